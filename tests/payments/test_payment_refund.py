"""Refunding a payment: through the gateway, once, and nothing when nothing was taken."""

from __future__ import annotations

from decimal import Decimal

import pytest
from factories import CustomerFactory

from payments import gateway, services
from payments.errors import PaymentVoided
from payments.models import (
    ChargeStatus,
    GatewayCharge,
    KeyOutcome,
    Payment,
    PaymentKey,
    PaymentStatus,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment():
    customer = CustomerFactory(credit_limit=Decimal("50.00"))
    return services.payment_take(
        customer_id=customer.pk,
        order_id=1,
        amount="30.00",
        method="credit_card",
        idempotency_key="take-1",
    )


def test_it_refunds_through_the_gateway_and_frees_the_credit(payment):
    refunded = services.payment_refund(idempotency_key="take-1")
    assert refunded is not None and refunded.pk == payment.pk
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refunded_at is not None
    assert GatewayCharge.objects.get(idempotency_key="take-1").status == ChargeStatus.REFUNDED
    customer_id = payment.customer_id
    assert services.customer_available_credit(customer_id=customer_id) == Decimal("50.00")


def test_refunding_twice_is_harmless(payment):
    first = services.payment_refund(idempotency_key="take-1")
    again = services.payment_refund(idempotency_key="take-1")
    assert again is not None and first is not None
    assert (again.pk, again.refunded_at) == (first.pk, first.refunded_at)


def test_it_takes_nothing_back_when_no_payment_was_taken_and_voids_the_key():
    assert services.payment_refund(idempotency_key="never-taken") is None
    assert GatewayCharge.objects.get().status == ChargeStatus.VOIDED
    assert PaymentKey.objects.get().outcome == KeyOutcome.VOIDED


def test_it_gives_back_a_charge_whose_payment_was_never_recorded():
    # An attempt that charged the card, then died before recording its payment.
    gateway.charge(idempotency_key="take-2", method="credit_card", amount=Decimal("5.00"))
    assert services.payment_refund(idempotency_key="take-2") is None
    assert GatewayCharge.objects.get(idempotency_key="take-2").status == ChargeStatus.REFUNDED


def test_a_payment_that_gateway_down_never_took_compensates_to_nothing():
    customer = CustomerFactory()
    with pytest.raises(gateway.GatewayUnavailable):
        services.payment_take(
            customer_id=customer.pk,
            order_id=1,
            amount="5.00",
            method="card_down",
            idempotency_key="take-3",
        )
    assert services.payment_refund(idempotency_key="take-3") is None


def test_a_take_that_arrives_after_its_refund_takes_nothing():
    # A stale delivery of take_payment, after the saga's compensation found nothing to refund.
    customer = CustomerFactory(credit_limit=Decimal("50.00"))
    assert services.payment_refund(idempotency_key="late-1") is None
    with pytest.raises(PaymentVoided, match="refunded before it was taken"):
        services.payment_take(
            customer_id=customer.pk,
            order_id=1,
            amount="30.00",
            method="credit_card",
            idempotency_key="late-1",
        )
    assert not Payment.objects.exists()
    charge = GatewayCharge.objects.get(idempotency_key="late-1")
    assert (charge.status, charge.attempts) == (ChargeStatus.VOIDED, 0)
    assert services.customer_available_credit(customer_id=customer.pk) == Decimal("50.00")


def test_a_refund_after_the_take_decided_the_key_refunds_the_payment(payment):
    assert PaymentKey.objects.get(idempotency_key="take-1").outcome == KeyOutcome.TAKEN
    refunded = services.payment_refund(idempotency_key="take-1")
    assert refunded is not None and refunded.status == PaymentStatus.REFUNDED
    assert PaymentKey.objects.get(idempotency_key="take-1").outcome == KeyOutcome.TAKEN
