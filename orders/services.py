"""Order operations. PENDING is a semantic lock: only the owning saga may decide the order."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from bpm import ownership
from bpm import services as sagas
from orders import order_input
from orders.errors import OrderAlreadyDecided, OrderConflict, OrderLocked, OrderNotFound
from orders.models import Order, OrderState, RejectionReason

CENT = Decimal("0.01")
# Order.total holds 12 digits, 2 of them after the point.
MAX_TOTAL = Decimal(10) ** 10


def order_create(
    *,
    saga_id: uuid.UUID,
    customer_id: int,
    product_ids: Sequence[int],
    total: Decimal | str,
    owner_id: int | None = None,
) -> Order:
    """Create the PENDING order locked by `saga_id`; a repeat by the same saga returns it.

    `owner_id` is the user the order belongs to (bpm.ownership), the saga's owner.
    """
    fields = _validated(customer_id=customer_id, product_ids=product_ids, total=total)
    existing = order_for_saga(saga_id=saga_id)
    if existing is not None:
        _require_same(existing, **fields)
        return existing
    return Order.objects.create(saga_id=saga_id, owner_id=owner_id, **fields)


def order_place(
    *,
    customer_id: int,
    product_ids: Sequence[int],
    total: Decimal | str,
    payment_method: str,
    user: Any = None,
    actor: str = "",
    owner: Any = None,
) -> Order:
    """Start the place_order saga for a new order and create its PENDING order, in one transaction.

    The saga's create_order step then finds the order and goes on to take the payment. `user`
    (whose permission to start sagas is checked) or `actor` is passed to saga_start. `owner`
    owns both the saga and the order (bpm.ownership); its take_payment step refuses a customer
    that the owner may not use as UNKNOWN_CUSTOMER, the answer for one that does not exist.
    """
    fields = _validated(customer_id=customer_id, product_ids=product_ids, total=total)
    value: dict[str, Any] = {
        "customer_id": fields["customer_id"],
        "products": fields["product_ids"],
        "total": f"{fields['total']:.2f}",
        "payment_method": payment_method,
    }
    # The order's own schema, whatever version of place_order is active.
    order_input.validate(value, path="")
    with transaction.atomic():
        saga = sagas.saga_start(
            definition="place_order", input=value, user=user, actor=actor, owner=owner
        )
        return order_create(
            saga_id=saga.id,
            customer_id=fields["customer_id"],
            product_ids=fields["product_ids"],
            total=fields["total"],
            owner_id=getattr(owner, "pk", None),
        )


def order_approve(*, order_id: int, saga_id: uuid.UUID) -> Order:
    """Approve the order for its owning saga."""
    return _decide(order_id, saga_id, OrderState.APPROVED, lambda order: order.approve())


def order_reject(*, order_id: int, saga_id: uuid.UUID, reason: str) -> Order:
    """Reject the order for its owning saga, giving one of the RejectionReason codes."""
    if reason not in RejectionReason.values:
        choices = ", ".join(RejectionReason.values)
        message = f"{reason!r} is not a rejection reason; use one of {choices}"
        raise ValidationError({"reason": message})
    return _decide(
        order_id, saga_id, OrderState.REJECTED, lambda order: order.reject(reason=reason), reason
    )


def order_cancel(*, order_id: int, saga_id: uuid.UUID) -> Order:
    """Cancel the order for its owning saga (it failed for a reason that is not a rejection)."""
    return _decide(order_id, saga_id, OrderState.CANCELLED, lambda order: order.cancel())


def order_get(*, order_id: int, user: Any = None) -> Order:
    """Return the order with this id as `user` sees it (bpm.ownership), or raise OrderNotFound.

    Without a user (a trusted caller on the server) every order is found.
    """
    try:
        return orders_visible_to(user=user).get(pk=order_id)
    except Order.DoesNotExist:
        raise OrderNotFound(f"no order with id {order_id}") from None


def orders_visible_to(*, user: Any) -> QuerySet[Order]:
    """Return the orders `user` may see: every one, or the ones placed for it."""
    return ownership.visible_to(user, Order.objects.all())


def order_for_saga(*, saga_id: uuid.UUID) -> Order | None:
    """Return the order created by this saga, if it created one."""
    return Order.objects.filter(saga_id=saga_id).first()


def orders_for_customer(*, customer_id: int, user: Any = None) -> QuerySet[Order]:
    """Return the customer's orders that `user` may see (bpm.ownership), newest first."""
    orders = orders_visible_to(user=user).filter(customer_id=customer_id)
    return orders.order_by("-created_at", "-id")


def _decide(
    order_id: int,
    saga_id: uuid.UUID,
    target: str,
    apply: Callable[[Order], None],
    reason: str | None = None,
) -> Order:
    with transaction.atomic():
        try:
            order = Order.objects.select_for_update().get(pk=order_id)
        except Order.DoesNotExist:
            raise OrderNotFound(f"no order with id {order_id}") from None
        if order.saga_id != uuid.UUID(str(saga_id)):
            raise OrderLocked(
                f"order {order.pk} belongs to saga {order.saga_id}, not {saga_id}:"
                " only the saga that created an order may decide it"
            )
        if order.state == target and order.rejection_reason == reason:
            return order  # its saga asking again: already done
        if not order.is_pending:
            decided = order.state
            if order.rejection_reason:
                decided += f" ({order.rejection_reason})"
            raise OrderAlreadyDecided(
                f"order {order.pk} is already {decided}; only a PENDING order can become {target}"
            )
        apply(order)
        order.save()
        return order


def _validated(
    *, customer_id: int, product_ids: Sequence[int], total: Decimal | str
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    # JSON Schema's integers include 5.0, as the order's input schema and the API do.
    customer_id = _integral(customer_id)
    if isinstance(product_ids, Sequence) and not isinstance(product_ids, str | bytes):
        product_ids = [_integral(product) for product in product_ids]
    if not _is_positive_int(customer_id):
        errors["customer_id"] = f"must be an integer of at least 1, not {customer_id!r}"
    if (
        isinstance(product_ids, str | bytes)
        or not isinstance(product_ids, Sequence)
        or not product_ids
        or not all(_is_positive_int(product) for product in product_ids)
    ):
        errors["product_ids"] = (
            f"must be a non-empty list of integers of at least 1, not {product_ids!r}"
        )
    amount = _money(total)
    if amount is None:
        errors["total"] = f"must be a decimal of at least 0 with up to 2 places, not {total!r}"
    if errors:
        raise ValidationError(errors)
    return {"customer_id": customer_id, "product_ids": list(product_ids), "total": amount}


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _money(value: Decimal | str) -> Decimal | None:
    if isinstance(value, float | bool):
        return None  # binary floats do not hold cents exactly
    try:
        amount = Decimal(value)
        cents = amount.quantize(CENT)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if amount != cents or not 0 <= cents < MAX_TOTAL:
        return None
    return cents


def _require_same(order: Order, **fields: object) -> None:
    differences = [
        f"{name} {getattr(order, name)!r} != {value!r}"
        for name, value in fields.items()
        if getattr(order, name) != value
    ]
    if differences:
        raise OrderConflict(
            f"saga {order.saga_id} already created order {order.pk} with different details: "
            + "; ".join(differences)
        )
