"""The order services: creation per saga, and PENDING as a semantic lock held by that saga."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from factories import OrderFactory

from bpm.models import SagaInstance
from orders import services
from orders.errors import OrderAlreadyDecided, OrderConflict, OrderLocked, OrderNotFound
from orders.models import Order, OrderState

pytestmark = pytest.mark.django_db


def create(saga_id: uuid.UUID, **overrides: object) -> Order:
    details = {"customer_id": 7, "product_ids": [1, 2], "total": "12.50", **overrides}
    return services.order_create(saga_id=saga_id, **details)


def test_it_creates_a_pending_order_owned_by_its_saga():
    saga_id = uuid.uuid4()
    order = create(saga_id)
    order.refresh_from_db()
    assert order.state == OrderState.PENDING
    assert order.saga_id == saga_id
    assert (order.customer_id, order.product_ids, order.total) == (7, [1, 2], Decimal("12.50"))
    assert order.rejection_reason is None


def test_creating_again_for_the_same_saga_returns_the_first_order():
    saga_id = uuid.uuid4()
    first = create(saga_id)
    assert create(saga_id).pk == first.pk
    assert Order.objects.count() == 1


def test_it_refuses_a_second_order_with_other_details_for_the_same_saga():
    saga_id = uuid.uuid4()
    create(saga_id)
    with pytest.raises(OrderConflict, match="total"):
        create(saga_id, total="99.00")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_id", 0),
        ("customer_id", "7"),
        ("product_ids", []),
        ("product_ids", [1, 0]),
        ("product_ids", "12"),
        ("total", "-1.00"),
        ("total", "1.234"),
        ("total", "ten"),
        ("total", 1.5),
        ("total", "10000000000.00"),
    ],
)
def test_it_refuses_malformed_details_naming_the_field(field, value):
    with pytest.raises(ValidationError) as caught:
        create(uuid.uuid4(), **{field: value})
    assert field in caught.value.message_dict
    assert Order.objects.count() == 0


def test_the_owning_saga_approves_its_pending_order():
    order = OrderFactory()
    services.order_approve(order_id=order.pk, saga_id=order.saga_id)
    order.refresh_from_db()
    assert order.state == OrderState.APPROVED


def test_the_owning_saga_rejects_its_order_with_a_reason():
    order = OrderFactory()
    services.order_reject(order_id=order.pk, saga_id=order.saga_id, reason="PAYMENT_DECLINED")
    order.refresh_from_db()
    assert (order.state, order.rejection_reason) == (OrderState.REJECTED, "PAYMENT_DECLINED")


def test_the_owning_saga_cancels_its_order_without_a_reason():
    order = OrderFactory()
    services.order_cancel(order_id=order.pk, saga_id=order.saga_id)
    order.refresh_from_db()
    assert (order.state, order.rejection_reason) == (OrderState.CANCELLED, None)


def test_it_refuses_a_rejection_reason_it_does_not_know():
    order = OrderFactory()
    with pytest.raises(ValidationError, match="INSUFFICIENT_CREDIT"):
        services.order_reject(order_id=order.pk, saga_id=order.saga_id, reason="TOO_EXPENSIVE")
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


@pytest.mark.parametrize(
    "decide",
    [
        lambda order, saga_id: services.order_approve(order_id=order.pk, saga_id=saga_id),
        lambda order, saga_id: services.order_cancel(order_id=order.pk, saga_id=saga_id),
        lambda order, saga_id: services.order_reject(
            order_id=order.pk, saga_id=saga_id, reason="INSUFFICIENT_CREDIT"
        ),
    ],
    ids=["approve", "cancel", "reject"],
)
def test_another_saga_cannot_move_a_pending_order(decide):
    order = OrderFactory()
    intruder = uuid.uuid4()
    with pytest.raises(OrderLocked, match=f"belongs to saga {order.saga_id}, not {intruder}"):
        decide(order, intruder)
    order.refresh_from_db()
    assert order.state == OrderState.PENDING


def test_the_state_cannot_be_assigned_directly():
    order = OrderFactory()
    with pytest.raises(AttributeError):
        order.state = OrderState.APPROVED


def test_a_decided_order_never_changes_again():
    order = OrderFactory()
    services.order_approve(order_id=order.pk, saga_id=order.saga_id)
    with pytest.raises(OrderAlreadyDecided, match="already APPROVED"):
        services.order_cancel(order_id=order.pk, saga_id=order.saga_id)
    order.refresh_from_db()
    assert order.state == OrderState.APPROVED


def test_a_rejected_order_cannot_be_rejected_again_for_another_reason():
    order = OrderFactory()
    services.order_reject(order_id=order.pk, saga_id=order.saga_id, reason="UNKNOWN_CUSTOMER")
    with pytest.raises(OrderAlreadyDecided, match=r"REJECTED \(UNKNOWN_CUSTOMER\)"):
        services.order_reject(order_id=order.pk, saga_id=order.saga_id, reason="PAYMENT_DECLINED")


def test_its_saga_repeating_a_decision_is_harmless():
    order = OrderFactory()
    first = services.order_reject(
        order_id=order.pk, saga_id=order.saga_id, reason="INSUFFICIENT_CREDIT"
    )
    again = services.order_reject(
        order_id=order.pk, saga_id=order.saga_id, reason="INSUFFICIENT_CREDIT"
    )
    assert again.state == OrderState.REJECTED
    assert again.updated_at == first.updated_at


def test_deciding_an_order_that_does_not_exist_says_so():
    with pytest.raises(OrderNotFound, match="no order with id 404"):
        services.order_approve(order_id=404, saga_id=uuid.uuid4())


def test_the_database_refuses_a_rejected_state_without_a_reason():
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory(state=OrderState.REJECTED, rejection_reason=None)


def test_it_reads_an_order_by_id():
    order = OrderFactory()
    assert services.order_get(order_id=order.pk) == order
    with pytest.raises(OrderNotFound):
        services.order_get(order_id=order.pk + 1)


def test_it_lists_a_customers_orders_newest_first():
    older = OrderFactory(customer_id=3)
    newer = OrderFactory(customer_id=3)
    OrderFactory(customer_id=4)
    assert list(services.orders_for_customer(customer_id=3)) == [newer, older]


def test_it_finds_the_order_a_saga_created():
    order = OrderFactory()
    assert services.order_for_saga(saga_id=order.saga_id) == order
    assert services.order_for_saga(saga_id=uuid.uuid4()) is None


def test_placing_an_order_starts_its_saga_and_creates_the_order_it_owns():
    order = services.order_place(
        customer_id=7, product_ids=[1, 2], total="12.5", payment_method="credit_card", actor="t"
    )
    saga = SagaInstance.objects.get(pk=order.saga_id)
    assert (saga.definition_name, order.state, order.total) == (
        "place_order",
        OrderState.PENDING,
        Decimal("12.50"),
    )
    assert saga.input == {
        "customer_id": 7,
        "products": [1, 2],
        "total": "12.50",
        "payment_method": "credit_card",
    }


def test_an_order_that_cannot_be_placed_starts_no_saga():
    with pytest.raises(ValidationError):
        services.order_place(
            customer_id=7, product_ids=[], total="1", payment_method="credit_card", actor="t"
        )
    assert not SagaInstance.objects.exists() and not Order.objects.exists()
