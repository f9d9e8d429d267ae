"""The orders step handlers, called as the engine calls them."""

from __future__ import annotations

import uuid

import pytest
from factories import OrderFactory, step_context

from bpm import registry
from orders.models import Order, OrderState
from orders.steps import approve_order, create_order, reject_order

pytestmark = pytest.mark.django_db

ORDER_INPUT = {"customer_id": 5, "products": [3, 4], "total": "20.00", "payment_method": "x"}


def failure(code: str) -> dict[str, str]:
    return {"step": "take_payment", "kind": "REFUSED", "code": code, "message": "no"}


def test_the_handlers_are_registered_as_transactional():
    for name in ("orders.create_order", "orders.reject_order", "orders.approve_order"):
        assert registry.get_handler(name).transactional


def test_create_order_creates_a_pending_order_and_returns_its_id():
    ctx = step_context(step="create_order", input=ORDER_INPUT)
    output = create_order(ctx)
    order = Order.objects.get()
    assert output == {"order_id": order.pk}
    assert (order.saga_id, order.customer_id, order.product_ids) == (ctx.saga_id, 5, [3, 4])
    assert order.state == OrderState.PENDING


def test_create_order_delivered_twice_creates_one_order():
    ctx = step_context(step="create_order", input=ORDER_INPUT)
    assert create_order(ctx) == create_order(ctx)
    assert Order.objects.count() == 1


@pytest.mark.parametrize("code", ["INSUFFICIENT_CREDIT", "UNKNOWN_CUSTOMER", "PAYMENT_DECLINED"])
def test_reject_order_rejects_with_the_payment_refusal_as_reason(code):
    order = OrderFactory()
    ctx = step_context(
        step="create_order", saga_id=order.saga_id, direction="COMPENSATION", failure=failure(code)
    )
    output = reject_order(ctx)
    assert output == {"order_id": order.pk, "state": "REJECTED", "rejection_reason": code}
    order.refresh_from_db()
    assert (order.state, order.rejection_reason) == (OrderState.REJECTED, code)


@pytest.mark.parametrize("code", ["RETRIES_EXHAUSTED", "OPERATOR", "HANGING"])
def test_reject_order_cancels_when_the_saga_failed_for_another_reason(code):
    order = OrderFactory()
    ctx = step_context(
        step="create_order", saga_id=order.saga_id, direction="COMPENSATION", failure=failure(code)
    )
    assert reject_order(ctx) == {
        "order_id": order.pk,
        "state": "CANCELLED",
        "rejection_reason": None,
    }
    order.refresh_from_db()
    assert order.state == OrderState.CANCELLED


def test_reject_order_without_an_order_does_nothing():
    ctx = step_context(
        step="create_order", direction="COMPENSATION", failure=failure("PAYMENT_DECLINED")
    )
    assert reject_order(ctx) == {}
    assert Order.objects.count() == 0


def test_reject_order_leaves_other_sagas_orders_alone():
    other = OrderFactory()
    ctx = step_context(
        step="create_order", saga_id=uuid.uuid4(), direction="COMPENSATION", failure=failure("X")
    )
    assert reject_order(ctx) == {}
    other.refresh_from_db()
    assert other.state == OrderState.PENDING


def test_approve_order_approves_the_order_created_earlier_in_the_saga():
    order = OrderFactory()
    ctx = step_context(
        step="approve_order",
        saga_id=order.saga_id,
        outputs={"create_order": {"order_id": order.pk}},
    )
    assert approve_order(ctx) == {"order_id": order.pk, "state": "APPROVED"}
    order.refresh_from_db()
    assert order.state == OrderState.APPROVED
