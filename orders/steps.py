"""Saga step handlers for orders: thin adapters from a step context to the order services.

All of them touch only this database, so they are transactional: the engine runs them inside its
outcome transaction behind the barrier, which gives them exactly-once effect.
"""

from __future__ import annotations

import logging
from typing import Any

from bpm import registry
from bpm.context import StepContext
from orders import services
from orders.models import RejectionReason

log = logging.getLogger(__name__)


@registry.handler("orders.create_order", transactional=True)
def create_order(ctx: StepContext) -> dict[str, Any]:
    """Create the PENDING order from the saga's input."""
    order = services.order_create(
        saga_id=ctx.saga_id,
        customer_id=ctx.input["customer_id"],
        product_ids=ctx.input["products"],
        total=ctx.input["total"],
        owner_id=ctx.owner_id,
    )
    log.info("order %s created, PENDING", order.pk)
    return {"order_id": order.pk}


@registry.handler("orders.reject_order", transactional=True)
def reject_order(ctx: StepContext) -> dict[str, Any]:
    """Undo create_order: REJECTED for a known business reason, CANCELLED for anything else."""
    order = services.order_for_saga(saga_id=ctx.saga_id)
    if order is None:
        return {}
    code = (ctx.failure or {}).get("code", "")
    if code in RejectionReason.values:
        order = services.order_reject(order_id=order.pk, saga_id=ctx.saga_id, reason=code)
    else:
        order = services.order_cancel(order_id=order.pk, saga_id=ctx.saga_id)
    log.info("order %s %s %s", order.pk, order.state, order.rejection_reason or "")
    return {"order_id": order.pk, "state": order.state, "rejection_reason": order.rejection_reason}


@registry.handler("orders.approve_order", transactional=True)
def approve_order(ctx: StepContext) -> dict[str, Any]:
    """Approve the order this saga created: the point of no return."""
    order_id = ctx.outputs["create_order"]["order_id"]
    order = services.order_approve(order_id=order_id, saga_id=ctx.saga_id)
    log.info("order %s approved", order.pk)
    return {"order_id": order.pk, "state": order.state}
