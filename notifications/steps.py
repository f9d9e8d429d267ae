"""Saga step handlers for notifications: thin adapters from a step context to the services.

Mail leaves this database, so they are not transactional: they get at-least-once delivery and
pass the step's idempotency key on.
"""

from __future__ import annotations

from typing import Any

from bpm import registry
from bpm.context import StepContext
from notifications import services
from notifications.models import NotificationStatus

CONFIRMATION = """Hello{name},

Your order{order} is confirmed: we have charged {total} to your account.

Thank you for shopping with us.
"""
RETRACTION = "This message was sent in error and no longer applies."


@registry.handler("notifications.send_confirmation")
def send_confirmation(ctx: StepContext) -> dict[str, Any]:
    """Mail the order confirmation to the input's email, else to the paying customer's, if any."""
    payment = ctx.outputs.get("take_payment") or {}
    order_id = (ctx.outputs.get("create_order") or {}).get("order_id")
    recipient = ctx.input.get("email") or payment.get("customer_email")
    if not recipient and "customer_email" in payment:
        # The paying customer keeps no address on file: there is nobody to write to, and
        # retrying would not change that.
        return {"notification_id": None, "skipped": "the customer has no email address"}
    if not recipient:
        raise ValueError(
            "nowhere to send the confirmation: the input has no email"
            " and take_payment gave no customer_email"
        )
    message = (ctx.input.get("notification") or {}).get("message") or CONFIRMATION.format(
        name=f" {payment['customer_name']}" if payment.get("customer_name") else "",
        order=f" {order_id}" if order_id is not None else "",
        total=payment.get("amount") or ctx.input.get("total"),
    )
    subject = f"Your order {order_id} is confirmed" if order_id else "Your order is confirmed"
    notification = services.notification_send(
        recipient=recipient,
        subject=subject,
        body=message,
        idempotency_key=ctx.idempotency_key,
        saga_id=ctx.saga_id,
    )
    return {"notification_id": notification.pk}


@registry.handler("notifications.retract_notification")
def retract_notification(ctx: StepContext) -> dict[str, Any]:
    """Undo a sending step: retract what its action sent, if it sent anything."""
    original = services.notification_for_key(idempotency_key=ctx.action_idempotency_key)
    if original is None:
        return {}
    if original.status == NotificationStatus.RETRACTED:
        # An earlier delivery of this compensation got that far.
        correction = services.notification_correction(notification_id=original.pk)
    else:
        failure = (ctx.failure or {}).get("message")
        reason = f"{RETRACTION} ({failure})" if failure else RETRACTION
        correction = services.notification_retract(notification_id=original.pk, reason=reason)
    return {
        "notification_id": original.pk,
        "correction_id": correction.pk if correction is not None else None,
    }
