"""The payments step handlers, called as the engine calls them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from factories import CustomerFactory, step_context

from bpm import registry
from bpm.errors import StepFailed
from payments import gateway
from payments.models import Payment, PaymentStatus
from payments.steps import refund_payment, take_payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada():
    return CustomerFactory(name="Ada", email="ada@example.com", credit_limit=Decimal("50.00"))


def take_ctx(customer_id: int, total: str = "12.50", method: str = "credit_card", **kwargs):
    order_input = {
        "customer_id": customer_id,
        "products": [1],
        "total": total,
        "payment_method": method,
    }
    outputs = {"create_order": {"order_id": 31}}
    return step_context(step="take_payment", input=order_input, outputs=outputs, **kwargs)


def refund_ctx(take):
    return step_context(step="take_payment", saga_id=take.saga_id, direction="COMPENSATION")


def test_the_handlers_are_at_least_once_not_transactional():
    for name in ("payments.take_payment", "payments.refund_payment"):
        assert not registry.get_handler(name).transactional


def test_take_payment_returns_the_payment_and_where_to_write_to_the_customer(ada):
    ctx = take_ctx(ada.pk)
    output = take_payment(ctx)
    payment = Payment.objects.get()
    assert output == {
        "payment_id": payment.pk,
        "amount": "12.50",
        "customer_email": "ada@example.com",
        "customer_name": "Ada",
    }
    assert (payment.order_id, payment.idempotency_key) == (31, ctx.idempotency_key)


def test_take_payment_delivered_twice_takes_one_payment(ada):
    ctx = take_ctx(ada.pk, total="7")
    assert take_payment(ctx) == take_payment(ctx)
    assert Payment.objects.count() == 1
    assert take_payment(ctx)["amount"] == "7.00"


@pytest.mark.parametrize(
    ("total", "method", "code"),
    [
        ("50.01", "credit_card", "INSUFFICIENT_CREDIT"),
        ("5.00", "card_declined", "PAYMENT_DECLINED"),
    ],
)
def test_take_payment_turns_a_refusal_into_a_step_failure(ada, total, method, code):
    with pytest.raises(StepFailed) as caught:
        take_payment(take_ctx(ada.pk, total=total, method=method))
    assert caught.value.code == code
    assert caught.value.message


def test_take_payment_refuses_an_unknown_customer():
    with pytest.raises(StepFailed) as caught:
        take_payment(take_ctx(999))
    assert caught.value.code == "UNKNOWN_CUSTOMER"


def test_take_payment_lets_a_gateway_fault_through_to_be_retried(ada):
    with pytest.raises(gateway.GatewayUnavailable):
        take_payment(take_ctx(ada.pk, method="card_down"))


def test_refund_payment_refunds_what_the_action_took(ada):
    take = take_ctx(ada.pk)
    take_payment(take)
    assert refund_payment(refund_ctx(take)) == {"refunded": True}
    assert Payment.objects.get().status == PaymentStatus.REFUNDED
    assert refund_payment(refund_ctx(take)) == {"refunded": True}


def test_refund_payment_without_a_payment_refunds_nothing(ada):
    take = take_ctx(ada.pk)
    assert refund_payment(refund_ctx(take)) == {"refunded": False}
