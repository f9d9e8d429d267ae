"""The simulated card gateway: its test cards, and one charge per idempotency key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments import gateway
from payments.models import ChargeStatus, GatewayCharge

pytestmark = pytest.mark.django_db

AMOUNT = Decimal("12.50")


def charge(method: str, key: str = "key-1", amount: Decimal = AMOUNT) -> GatewayCharge:
    return gateway.charge(idempotency_key=key, method=method, amount=amount)


def ledger(key: str = "key-1") -> GatewayCharge:
    return GatewayCharge.objects.get(idempotency_key=key)


def test_a_credit_card_is_charged_with_a_reference():
    record = charge("credit_card")
    assert record.status == ChargeStatus.CHARGED
    assert record.reference.startswith("ch_")
    assert (ledger().amount, ledger().attempts) == (AMOUNT, 1)


def test_a_repeated_request_returns_the_first_charge_without_charging_again():
    first = charge("credit_card")
    again = charge("credit_card")
    assert again.reference == first.reference
    assert GatewayCharge.objects.count() == 1
    assert ledger().attempts == 2


def test_card_declined_is_declined_every_time():
    for _ in range(2):
        with pytest.raises(gateway.CardDeclined, match="declined by its issuer"):
            charge("card_declined")
    assert ledger().status == ChargeStatus.DECLINED


def test_an_unknown_method_is_declined_naming_the_methods_that_exist():
    with pytest.raises(gateway.CardDeclined, match=r"unknown payment method 'bitcoin'.*card_flaky"):
        charge("bitcoin")


def test_card_flaky_fails_twice_per_key_then_charges():
    for attempt in (1, 2):
        with pytest.raises(gateway.GatewayUnavailable, match=f"request {attempt}"):
            charge("card_flaky")
    assert charge("card_flaky").status == ChargeStatus.CHARGED
    with pytest.raises(gateway.GatewayUnavailable):
        charge("card_flaky", key="key-2")


def test_card_down_never_reaches_the_gateway():
    for _ in range(3):
        with pytest.raises(gateway.GatewayUnavailable, match="unreachable"):
            charge("card_down")
    assert not GatewayCharge.objects.exists()


def test_a_refund_of_a_card_down_charge_fails_too():
    GatewayCharge.objects.create(
        idempotency_key="key-1", method="card_down", amount=AMOUNT, status=ChargeStatus.CHARGED
    )
    with pytest.raises(gateway.GatewayUnavailable):
        gateway.refund(idempotency_key="key-1")
    assert ledger().status == ChargeStatus.CHARGED


def test_card_slow_takes_its_configured_time_then_charges(settings, monkeypatch):
    settings.PAYMENTS_GATEWAY_SLOW_SECONDS = 0.25
    slept: list[float] = []
    monkeypatch.setattr(gateway.time, "sleep", slept.append)
    assert charge("card_slow").status == ChargeStatus.CHARGED
    assert slept == [0.25]


def test_card_slow_waits_three_seconds_by_default(settings):
    del settings.PAYMENTS_GATEWAY_SLOW_SECONDS
    assert gateway.slow_seconds() == 3.0


def test_a_key_reused_for_another_amount_is_refused():
    charge("credit_card")
    with pytest.raises(gateway.IdempotencyKeyReused, match=r"first used to charge 12\.50"):
        charge("credit_card", amount=Decimal("99.00"))
    assert ledger().attempts == 1


def test_a_refund_gives_the_charge_back_once():
    charge("credit_card")
    assert gateway.refund(idempotency_key="key-1").status == ChargeStatus.REFUNDED
    assert gateway.refund(idempotency_key="key-1").status == ChargeStatus.REFUNDED


def test_a_refund_of_a_key_the_gateway_never_saw_voids_it_so_a_later_charge_is_refused():
    # A take still in flight must not charge after its saga gave the money back.
    voided = gateway.refund(idempotency_key="key-1")
    assert (voided.status, voided.amount, voided.reference) == (ChargeStatus.VOIDED, 0, "")
    with pytest.raises(gateway.CardDeclined, match="was voided; a new charge needs a new key"):
        charge("credit_card")
    assert (ledger().status, ledger().attempts) == (ChargeStatus.VOIDED, 1)
    assert gateway.refund(idempotency_key="key-1").status == ChargeStatus.VOIDED


def test_the_answer_to_a_charge_can_be_delayed_after_the_money_is_taken(settings, monkeypatch):
    settings.PAYMENTS_GATEWAY_ANSWER_DELAY = 0.5
    ledger_when_waiting: list[str] = []
    monkeypatch.setattr(
        gateway.time, "sleep", lambda _: ledger_when_waiting.append(ledger().status)
    )
    charge("credit_card")
    charge("credit_card")  # a repeated request is answered at once
    assert ledger_when_waiting == [ChargeStatus.CHARGED]


def test_a_refunded_key_cannot_charge_again():
    charge("credit_card")
    gateway.refund(idempotency_key="key-1")
    with pytest.raises(gateway.CardDeclined, match="was refunded"):
        charge("credit_card")


def test_a_refund_voids_a_charge_still_in_flight_so_it_never_completes():
    with pytest.raises(gateway.GatewayUnavailable):
        charge("card_flaky")
    assert gateway.refund(idempotency_key="key-1").status == ChargeStatus.VOIDED
    for _ in range(3):
        with pytest.raises(gateway.CardDeclined, match="was voided"):
            charge("card_flaky")
    assert ledger().reference == ""


def test_a_slow_charge_refunded_while_it_waits_does_not_charge(monkeypatch):
    monkeypatch.setattr(gateway.time, "sleep", lambda _: gateway.refund(idempotency_key="key-1"))
    with pytest.raises(gateway.CardDeclined, match="was voided"):
        charge("card_slow")
    assert ledger().status == ChargeStatus.VOIDED
