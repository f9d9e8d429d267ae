"""The demo_trickle command: demo customers, and one place_order saga per scenario in turn."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from bpm.models import SagaDefinition, SagaInstance
from demo.management.commands.demo_trickle import SCENARIOS, scenario_of
from payments.models import Customer
from payments.services import customer_available_credit, customer_find

pytestmark = pytest.mark.django_db


def trickle(*args: str) -> str:
    out = StringIO()
    call_command("demo_trickle", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_creates_the_demo_customers_once():
    trickle("--count", "1", "--interval", "0")
    trickle("--count", "1", "--interval", "0")
    assert customer_find(email="ada@example.com").credit_limit == Decimal("500.00")
    assert customer_find(email="grace@example.com").credit_limit == Decimal("20.00")
    assert Customer.objects.filter(email__endswith="@bounce.invalid").count() == 1
    assert customer_find(email="margaret@example.com").credit_limit == Decimal("100000.00")
    assert Customer.objects.count() == 4


def test_it_starts_one_saga_per_scenario_in_turn_and_prints_a_line_for_each():
    output = trickle("--count", str(len(SCENARIOS)), "--interval", "0")
    sagas = list(SagaInstance.objects.order_by("created_at"))
    assert [scenario_of(saga) for saga in sagas] == [s.name for s in SCENARIOS]
    assert [saga.definition_name for saga in sagas] == [s.definition for s in SCENARIOS]
    assert {saga.definition_name for saga in sagas} == {"place_order", "review_large_order"}
    for saga in sagas:
        assert str(saga.id) in output
    assert f"Started {len(SCENARIOS)} demo sagas." in output


def test_its_scenarios_cover_every_path():
    methods = {scenario.payment_method for scenario in SCENARIOS}
    assert {"credit_card", "card_declined", "card_flaky", "card_down"} <= methods
    output = trickle("--count", str(len(SCENARIOS)), "--interval", "0")
    by_scenario = {
        scenario_of(saga): saga.input for saga in SagaInstance.objects.all()
    }
    grace = customer_find(email="grace@example.com")
    assert Decimal(by_scenario["over_credit_limit"]["total"]) > grace.credit_limit
    assert not Customer.objects.filter(pk=by_scenario["unknown_customer"]["customer_id"]).exists()
    bouncer = Customer.objects.get(pk=by_scenario["bouncing_email"]["customer_id"])
    assert bouncer.email.endswith("@bounce.invalid")
    assert "INSUFFICIENT_CREDIT" in output and "stuck" in output
    large = [
        saga for saga in SagaInstance.objects.all() if saga.definition_name == "review_large_order"
    ]
    assert {scenario_of(saga) for saga in large} == {"large_order_review", "large_order_fraud"}
    # The warehouse signals each of them at once; the signal waits for its step.
    assert all(saga.signals.filter(name="warehouse_reserved").exists() for saga in large)


def test_it_syncs_the_definitions_when_place_order_is_missing():
    SagaDefinition.objects.filter(name="place_order").delete()
    output = trickle("--count", "1", "--interval", "0")
    assert "Synced the saga definitions" in output
    assert SagaDefinition.objects.filter(name="place_order").exists()


def test_it_raises_a_customers_limit_when_their_credit_runs_low():
    trickle("--count", "1", "--interval", "0")
    ada = customer_find(email="ada@example.com")
    ada.credit_limit = Decimal("50.00")
    ada.save()
    output = trickle("--count", "1", "--interval", "0")
    assert "Raised Ada's credit limit to 550.00" in output
    assert customer_available_credit(customer_id=ada.pk) == Decimal("550.00")


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--interval", "-1"], "--interval"), (["--count", "0"], "--count")],
)
def test_it_refuses_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        trickle(*args)
