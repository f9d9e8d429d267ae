"""Saga step handlers for payments: thin adapters from a step context to the payment services.

They reach the card gateway, outside this database, so they are not transactional: they get
at-least-once delivery and pass the step's idempotency key on, which makes a repeat harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from bpm import registry
from bpm.context import StepContext
from bpm.errors import StepFailed
from payments import services
from payments.errors import PaymentRefused

log = logging.getLogger(__name__)


@registry.handler("payments.take_payment")
def take_payment(ctx: StepContext) -> dict[str, Any]:
    """Charge the order's total to the customer's card; a refusal makes the saga compensate."""
    try:
        payment = services.payment_take(
            customer_id=ctx.input["customer_id"],
            order_id=ctx.outputs["create_order"]["order_id"],
            amount=ctx.input["total"],
            method=ctx.input["payment_method"],
            idempotency_key=ctx.idempotency_key,
            owner_id=ctx.owner_id,
        )
    except PaymentRefused as refusal:
        log.info("payment refused: %s", refusal.code)
        raise StepFailed(refusal.code, refusal.message) from refusal
    log.info("payment %s took %s", payment.pk, payment.amount)
    return {
        "payment_id": payment.pk,
        "amount": str(payment.amount),
        # Later steps learn where to write through the saga's data, not by asking payments.
        "customer_email": payment.customer.email,
        "customer_name": payment.customer.name,
    }


@registry.handler("payments.refund_payment")
def refund_payment(ctx: StepContext) -> dict[str, Any]:
    """Undo take_payment: refund what its action took, if it took anything."""
    payment = services.payment_refund(idempotency_key=ctx.action_idempotency_key)
    log.info("payment %s refunded", payment.pk if payment is not None else "(none taken)")
    return {"refunded": payment is not None}
