from __future__ import annotations

import threading

import pytest
from django.db import connection
from testkit import declare, fresh, three_steps, with_pivot

from bpm import engine, services, sweeper
from bpm.declarations import RetryPolicy
from bpm.declarations import StepDeclaration as Step
from bpm.errors import Conflict, InvalidInput, NotFound
from bpm.models import EventType, SagaStatus, StepRun, StepStatus, StuckReason

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = "user:alice"


def stuck_after_pivot(world, drained):
    world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    return fresh(saga)


@pytest.fixture
def pivot_saga(the_world):
    with_pivot()


def test_a_step_after_the_pivot_that_exhausts_its_retries_goes_stuck(
    the_world, drained, pivot_saga
):
    saga = stuck_after_pivot(the_world, drained)
    assert saga.status == SagaStatus.STUCK
    assert saga.stuck_reason == StuckReason.RETRIES_EXHAUSTED
    assert ("a", "COMPENSATION") not in the_world.effects


def test_retry_completes_a_stuck_saga_without_rerunning_finished_steps(
    the_world, drained, pivot_saga
):
    saga = stuck_after_pivot(the_world, drained)
    result = services.saga_retry(saga_id=saga.id, reason="mail server fixed", actor=ALICE)
    assert result.applied and result.describe() == ["run after"]
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    forward = [call[0] for call in the_world.calls if call[1] == "FORWARD"]
    assert forward.count("a") == 1 and forward.count("pivot") == 1
    audit = saga.events.get(type=EventType.OPERATOR_RETRY)
    assert (audit.actor, audit.message) == (ALICE, "mail server fixed")


def test_preview_shows_the_plan_and_changes_nothing(the_world, drained, pivot_saga):
    saga = stuck_after_pivot(the_world, drained)
    events = saga.events.count()
    # A preview records nothing, so it needs no reason.
    result = services.saga_retry(saga_id=saga.id, actor=ALICE, preview=True)
    assert not result.applied and result.describe() == ["run after"]
    assert fresh(saga).status == SagaStatus.STUCK
    assert saga.events.count() == events


def test_skip_records_the_output_and_finishes_the_saga(the_world, drained, pivot_saga):
    saga = stuck_after_pivot(the_world, drained)
    services.saga_skip(saga_id=saga.id, reason="sent by hand", actor=ALICE, output={"by": "hand"})
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["after"] == {"by": "hand"}
    audit = saga.events.get(type=EventType.OPERATOR_SKIP)
    assert (audit.actor, audit.message, audit.data["output"]) == (
        ALICE,
        "sent by hand",
        {"by": "hand"},
    )


def test_abort_closes_a_stuck_saga_and_is_audited(the_world, drained, pivot_saga):
    saga = stuck_after_pivot(the_world, drained)
    services.saga_abort(saga_id=saga.id, reason="refunded by phone", actor=ALICE)
    saga = fresh(saga)
    assert saga.status == SagaStatus.ABORTED
    assert saga.events.filter(type=EventType.OPERATOR_ABORT, actor=ALICE).exists()


def test_compensating_after_the_pivot_committed_is_a_conflict(the_world, drained, pivot_saga):
    saga = stuck_after_pivot(the_world, drained)
    with pytest.raises(Conflict, match="pivot step 'pivot' has committed"):
        services.saga_compensate(saga_id=saga.id, reason="undo", actor=ALICE)
    assert fresh(saga).status == SagaStatus.STUCK


def test_compensate_undoes_a_saga_stuck_before_its_pivot(the_world, drained, settings):
    settings.BPM_STALL_AFTER = 60
    definition = three_steps()
    saga = services.saga_start(definition=definition.name, input={}, actor="test")
    from testkit import work

    from bpm import clock

    work()  # runs a, b, c inline in one job; stop c first to leave it waiting
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    saga2 = services.saga_start(definition=definition.name, input={}, actor="test")
    clock.advance(120)
    assert sweeper.flag_stalled() == 1
    assert fresh(saga2).stuck_reason == StuckReason.NO_PROGRESS
    preview = services.saga_compensate(
        saga_id=saga2.id, reason="give up", actor=ALICE, preview=True
    )
    assert preview.describe() == []
    services.saga_compensate(saga_id=saga2.id, reason="give up", actor=ALICE)
    assert fresh(saga2).status == SagaStatus.COMPENSATED


def test_actions_on_a_saga_that_is_not_stuck_are_conflicts_that_change_nothing(the_world, drained):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    drained()
    for action in (services.saga_retry, services.saga_abort, services.saga_compensate):
        with pytest.raises(Conflict, match="it is COMPLETED, not STUCK"):
            action(saga_id=saga.id, reason="why not", actor=ALICE)
    with pytest.raises(Conflict):
        services.saga_skip(saga_id=saga.id, reason="why not", actor=ALICE, output={})
    assert not saga.events.filter(actor=ALICE).exists()


def test_an_action_needs_a_reason_and_an_existing_saga(the_world, drained, pivot_saga):
    saga = stuck_after_pivot(the_world, drained)
    with pytest.raises(InvalidInput, match="reason: a reason is required"):
        services.saga_retry(saga_id=saga.id, reason="  ", actor=ALICE)
    with pytest.raises(NotFound, match="not a UUID"):
        services.saga_retry(saga_id="nope", reason="x", actor=ALICE)
    assert fresh(saga).status == SagaStatus.STUCK


def test_retry_with_edited_input_is_validated_and_audited(the_world, drained):
    definition = declare(
        "typed",
        Step("only", "test.remote", kind="RETRIABLE", retry=RetryPolicy(max_attempts=1)),
    )
    definition.input_schema = {
        "type": "object",
        "required": ["n"],
        "properties": {"n": {"type": "integer"}},
    }
    definition.save()
    the_world.will("only", "fault")
    saga = services.saga_start(definition="typed", input={"n": 1}, actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.STUCK
    with pytest.raises(InvalidInput, match=r"input.n: 'two' is not of type 'integer'"):
        services.saga_retry(saga_id=saga.id, reason="fix", actor=ALICE, input={"n": "two"})
    assert fresh(saga).input == {"n": 1}
    services.saga_retry(saga_id=saga.id, reason="fix", actor=ALICE, input={"n": 2})
    drained()
    saga = fresh(saga)
    assert (saga.status, saga.input) == (SagaStatus.COMPLETED, {"n": 2})
    edit = saga.events.get(type=EventType.INPUT_EDITED)
    assert edit.data == {"before": {"n": 1}, "after": {"n": 2}}


def test_a_failing_compensation_is_retried_then_goes_stuck(the_world, drained):
    the_world.will("c", "refuse:NO")
    the_world.will("b", "fault", "fault", "fault", direction="COMPENSATION")
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    drained()
    saga = fresh(saga)
    assert (saga.status, saga.stuck_reason) == (SagaStatus.STUCK, StuckReason.COMPENSATION_FAILED)
    assert the_world.calls.count(("b", "COMPENSATION", 3)) == 1
    assert ("a", "COMPENSATION") not in the_world.effects
    services.saga_retry(saga_id=saga.id, reason="refund service back", actor=ALICE)
    drained()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    assert the_world.effects[-2:] == [("b", "COMPENSATION"), ("a", "COMPENSATION")]


def test_two_operators_retrying_at_once_one_wins_and_the_other_gets_a_conflict(
    the_world, drained, pivot_saga
):
    saga = stuck_after_pivot(the_world, drained)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def operator(name: str) -> None:
        barrier.wait()
        try:
            services.saga_retry(saga_id=saga.id, reason="again", actor=f"user:{name}")
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=operator, args=(name,)) for name in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert saga.events.filter(type=EventType.OPERATOR_RETRY).count() == 1
    assert (
        StepRun.objects.filter(saga=saga, step__name="after", status=StepStatus.PENDING).count()
        == 1
    )


def test_the_actions_allowed_are_those_whose_checks_pass(the_world, drained, pivot_saga):
    saga = stuck_after_pivot(the_world, drained)
    runs = engine.latest_runs(saga)
    assert services.saga_actions_allowed(saga, runs) == [
        "retry",
        "skip",
        "abort",
        "rerun",
        "pause",
    ]
    services.saga_abort(saga_id=saga.id, reason="done by hand", actor=ALICE)
    saga = fresh(saga)
    assert services.saga_actions_allowed(saga, engine.latest_runs(saga)) == []
