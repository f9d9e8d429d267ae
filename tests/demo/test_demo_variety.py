"""demo_trickle is bounded and varied: a business key per saga, a mix of outcomes including a
saga stuck before the pivot (so Compensate is offered), and no more stuck sagas of a scenario
past --stuck-cap."""

from __future__ import annotations

from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from testkit import drain

from bpm import clock, engine, services, sweeper
from bpm.models import SagaInstance, SagaStatus
from demo.management.commands.demo_trickle import SCENARIOS, scenario_of

pytestmark = pytest.mark.django_db

ONE_CYCLE = str(len(SCENARIOS))


@pytest.fixture(autouse=True)
def _instant_slow_card(settings):
    settings.PAYMENTS_GATEWAY_SLOW_SECONDS = 0


def trickle(*args: str) -> str:
    out = StringIO()
    call_command("demo_trickle", "--interval", "0", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def stuck_by_scenario() -> Counter[str]:
    return Counter(
        scenario_of(saga) for saga in SagaInstance.objects.filter(status=SagaStatus.STUCK)
    )


def sweep_and_run() -> None:
    """Let the deadlines pass and the sweeper flag them, then run what is left."""
    clock.advance(1)
    sweeper.flag_past_deadline()
    drain()


def test_every_saga_has_a_business_key_of_its_own():
    trickle("--count", str(2 * len(SCENARIOS)))
    keys = list(SagaInstance.objects.values_list("business_key", flat=True))
    assert len(keys) == 2 * len(SCENARIOS) == len(set(keys))
    assert all(key.startswith("demo:") for key in keys)


def test_one_cycle_ends_in_a_mix_of_outcomes_with_stuck_sagas_on_both_sides_of_the_pivot():
    trickle("--count", ONE_CYCLE)
    sweep_and_run()
    statuses = Counter(SagaInstance.objects.values_list("status", flat=True))
    assert statuses[SagaStatus.COMPLETED] >= 2
    assert statuses[SagaStatus.COMPENSATED] >= 3
    assert stuck_by_scenario() == {"bouncing_email": 1, "payment_past_deadline": 2}
    for saga in SagaInstance.objects.filter(status=SagaStatus.STUCK):
        allowed = services.saga_actions_allowed(saga, engine.latest_runs(saga))
        before_pivot = scenario_of(saga) == "payment_past_deadline"
        assert ("compensate" in allowed) == before_pivot, (scenario_of(saga), allowed)


def test_a_scenario_starts_no_more_sagas_while_the_cap_of_them_are_stuck():
    trickle("--count", ONE_CYCLE, "--stuck-cap", "2")
    sweep_and_run()
    output = trickle("--count", ONE_CYCLE, "--stuck-cap", "2")
    sweep_and_run()
    stuck = stuck_by_scenario()
    assert stuck["payment_past_deadline"] == 2 and stuck["bouncing_email"] == 2
    # Said once per scenario, not at every turn of the cycle.
    assert output.count("payment_past_deadline: 2 sagas are stuck (or on their way)") == 1

    # An operator repairs one: the scenario starts again, up to the cap.
    saga = SagaInstance.objects.filter(
        status=SagaStatus.STUCK, business_key__startswith="demo:payment_past_deadline:"
    ).first()
    assert saga is not None
    services.saga_abort(saga_id=saga.id, reason="tried it", actor="test")
    trickle("--count", ONE_CYCLE, "--stuck-cap", "2")
    sweep_and_run()
    assert stuck_by_scenario()["payment_past_deadline"] == 2


def test_the_cap_must_be_at_least_one():
    with pytest.raises(CommandError, match="--stuck-cap"):
        trickle("--count", "1", "--stuck-cap", "0")
