"""A take that finds what an earlier or concurrent attempt did under its key settles it first:
it records that charge if the credit allows, or gives it back before it refuses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import OperationalError
from factories import CustomerFactory, PaymentFactory

from payments import gateway, services
from payments.errors import PaymentRefused, PaymentVoided
from payments.models import (
    ChargeStatus,
    GatewayCharge,
    KeyOutcome,
    Payment,
    PaymentKey,
    PaymentStatus,
)

pytestmark = pytest.mark.django_db

KEY = "saga-1:take_payment:forward"


@pytest.fixture
def ada():
    return CustomerFactory(name="Ada", credit_limit=Decimal("50.00"))


def take(customer_id: int, amount: str = "30.00", method: str = "credit_card") -> Payment:
    return services.payment_take(
        customer_id=customer_id, order_id=7, amount=amount, method=method, idempotency_key=KEY
    )


def an_earlier_attempt_charged(amount: str = "30.00", method: str = "credit_card") -> None:
    """The card was charged under the key; the attempt died before recording its payment."""
    gateway.charge(idempotency_key=KEY, method=method, amount=Decimal(amount))


def ledger() -> GatewayCharge:
    return GatewayCharge.objects.get(idempotency_key=KEY)


def test_a_retry_records_the_charge_an_earlier_attempt_made_without_charging_twice(ada):
    an_earlier_attempt_charged()
    payment = take(ada.pk)
    assert payment.gateway_reference == ledger().reference
    assert ledger().status == ChargeStatus.CHARGED
    assert services.customer_available_credit(customer_id=ada.pk) == Decimal("20.00")


def test_a_retry_refused_for_credit_gives_back_the_earlier_attempts_charge(ada):
    an_earlier_attempt_charged()
    PaymentFactory(customer=ada, amount=Decimal("40.00"))  # another order took the credit
    with pytest.raises(PaymentRefused) as caught:
        take(ada.pk)
    assert caught.value.code == "INSUFFICIENT_CREDIT"
    assert ledger().status == ChargeStatus.REFUNDED
    assert not Payment.objects.filter(idempotency_key=KEY).exists()


def test_a_retry_for_a_customer_who_is_gone_gives_back_the_earlier_attempts_charge(ada):
    an_earlier_attempt_charged()
    ada.delete()
    with pytest.raises(PaymentRefused) as caught:
        take(ada.pk)
    assert caught.value.code == "UNKNOWN_CUSTOMER"
    assert ledger().status == ChargeStatus.REFUNDED


def test_a_retry_refused_for_credit_voids_a_charge_an_earlier_attempt_left_in_flight(ada):
    # A worker killed while card_slow was charging leaves the charge PENDING at the gateway.
    GatewayCharge.objects.create(
        idempotency_key=KEY, method="card_slow", amount=Decimal("30.00"), attempts=1
    )
    PaymentFactory(customer=ada, amount=Decimal("40.00"))
    with pytest.raises(PaymentRefused):
        take(ada.pk, method="card_slow")
    assert ledger().status == ChargeStatus.VOIDED
    with pytest.raises(gateway.CardDeclined, match="was voided"):
        an_earlier_attempt_charged(method="card_slow")


def test_a_retry_completes_a_charge_an_earlier_attempt_left_in_flight(ada, settings):
    settings.PAYMENTS_GATEWAY_SLOW_SECONDS = 0
    GatewayCharge.objects.create(
        idempotency_key=KEY, method="card_slow", amount=Decimal("30.00"), attempts=1
    )
    payment = take(ada.pk, method="card_slow")
    assert (ledger().status, ledger().reference) == (
        ChargeStatus.CHARGED,
        payment.gateway_reference,
    )


def test_a_refusal_is_remembered_so_a_retry_refuses_the_same_way_without_charging(ada):
    PaymentFactory(customer=ada, amount=Decimal("40.00"))
    with pytest.raises(PaymentRefused) as first:
        take(ada.pk)
    Payment.objects.update(status=PaymentStatus.REFUNDED)  # the credit is back, too late
    with pytest.raises(PaymentRefused) as again:
        take(ada.pk)
    assert (again.value.code, again.value.message) == (first.value.code, first.value.message)
    decided = PaymentKey.objects.get(idempotency_key=KEY)
    assert (decided.outcome, decided.reason) == (KeyOutcome.VOIDED, "INSUFFICIENT_CREDIT")
    assert (ledger().status, ledger().attempts) == (ChargeStatus.VOIDED, 0)


def test_a_refusal_the_gateway_cannot_confirm_is_a_fault_until_it_can(ada, monkeypatch):
    an_earlier_attempt_charged()
    PaymentFactory(customer=ada, amount=Decimal("40.00"))
    real_refund = gateway.refund

    def unreachable(**kwargs: Any) -> GatewayCharge:
        raise gateway.GatewayUnavailable("the card gateway is unreachable")

    monkeypatch.setattr(gateway, "refund", unreachable)
    with pytest.raises(gateway.GatewayUnavailable):
        take(ada.pk)
    assert ledger().status == ChargeStatus.CHARGED
    monkeypatch.setattr(gateway, "refund", real_refund)
    with pytest.raises(PaymentRefused) as caught:
        take(ada.pk)
    assert caught.value.code == "INSUFFICIENT_CREDIT"
    assert ledger().status == ChargeStatus.REFUNDED


def test_an_attempt_in_flight_cannot_record_its_payment_after_a_retry_refused(ada, monkeypatch):
    real_charge = gateway.charge
    other = PaymentFactory(customer=ada, amount=Decimal("40.00"), status=PaymentStatus.REFUNDED)

    def charge_while_a_retry_refuses(**kwargs: Any) -> GatewayCharge:
        charged = real_charge(**kwargs)
        # While this attempt waits for the gateway's answer, its lease runs out; the retry
        # finds the credit taken by another order and refuses.
        Payment.objects.filter(pk=other.pk).update(status=PaymentStatus.RESERVED)
        monkeypatch.setattr(gateway, "charge", real_charge)
        with pytest.raises(PaymentRefused):
            take(ada.pk)
        # Then that other order is refunded: the credit would be there for the late attempt.
        Payment.objects.filter(pk=other.pk).update(status=PaymentStatus.REFUNDED)
        return charged

    monkeypatch.setattr(gateway, "charge", charge_while_a_retry_refuses)
    with pytest.raises(PaymentRefused) as caught:
        take(ada.pk)
    assert caught.value.code == "INSUFFICIENT_CREDIT"
    assert not Payment.objects.filter(idempotency_key=KEY).exists()
    assert ledger().status == ChargeStatus.REFUNDED
    assert services.customer_available_credit(customer_id=ada.pk) == Decimal("50.00")


def test_a_take_still_charging_when_its_refund_ran_leaves_nothing_charged_even_if_it_dies(
    ada, monkeypatch
):
    # The saga compensated while this attempt was between its key check and its charge, and
    # the refund found no payment. Then the attempt charges, and dies before it can look again.
    real_charge = gateway.charge

    def refund_then_charge_then_die(**kwargs: Any) -> GatewayCharge:
        services.payment_refund(idempotency_key=KEY)
        real_charge(**kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(gateway, "charge", refund_then_charge_then_die)
    with pytest.raises(PaymentVoided):
        take(ada.pk)  # the gateway refused the charge: the key was voided before it arrived
    assert ledger().status == ChargeStatus.VOIDED
    monkeypatch.setattr(gateway, "charge", real_charge)
    with pytest.raises(PaymentVoided):
        take(ada.pk)  # a late redelivery
    assert ledger().status == ChargeStatus.VOIDED
    assert not Payment.objects.exists()


def test_a_refund_that_loses_the_race_to_a_take_refunds_the_payment_it_recorded(ada, monkeypatch):
    real_lookup = services.payment_for_key

    def take_records_meanwhile(**kwargs: Any) -> Payment | None:
        monkeypatch.setattr(services, "payment_for_key", real_lookup)
        take(ada.pk)  # the take records its payment just after the refund looked
        return None

    monkeypatch.setattr(services, "payment_for_key", take_records_meanwhile)
    refunded = services.payment_refund(idempotency_key=KEY)
    assert refunded is not None and refunded.status == PaymentStatus.REFUNDED
    assert ledger().status == ChargeStatus.REFUNDED
    assert services.customer_available_credit(customer_id=ada.pk) == Decimal("50.00")
