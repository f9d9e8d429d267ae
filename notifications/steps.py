"""Saga step handlers for notifications: thin adapters from a step context to the services.

Mail leaves this database, so they are not transactional: they get at-least-once delivery and
pass the step's idempotency key on.

A confirmation goes only to the paying customer's address on file, with the text of the
operators' templates (templates/notifications/): nothing in a saga's input chooses the recipient
or the words, so a client's token cannot send mail of its own to anybody.
"""

from __future__ import annotations

import logging
from typing import Any

from django.template.loader import render_to_string

from bpm import registry
from bpm.context import StepContext
from notifications import services
from notifications.models import NotificationStatus

CONFIRMATION = "notifications/confirmation.txt"
CONFIRMATION_SUBJECT = "notifications/confirmation_subject.txt"
RETRACTION = "This message was sent in error and no longer applies."

log = logging.getLogger(__name__)


@registry.handler("notifications.send_confirmation")
def send_confirmation(ctx: StepContext) -> dict[str, Any]:
    """Mail the order confirmation to the paying customer's address, if it has one."""
    payment = ctx.outputs.get("take_payment") or {}
    order_id = (ctx.outputs.get("create_order") or {}).get("order_id")
    recipient = payment.get("customer_email")
    if not recipient and "customer_email" in payment:
        # The paying customer keeps no address on file: there is nobody to write to, and
        # retrying would not change that.
        log.info("no confirmation for order %s: the customer has no email address", order_id)
        return {"notification_id": None, "skipped": "the customer has no email address"}
    if not recipient:
        raise ValueError("nowhere to send the confirmation: take_payment gave no customer_email")
    values = {
        "customer_name": payment.get("customer_name") or "",
        "order_id": order_id,
        "total": payment.get("amount") or ctx.input.get("total"),
    }
    notification = services.notification_send(
        recipient=recipient,
        subject=render_to_string(CONFIRMATION_SUBJECT, values).strip(),
        body=render_to_string(CONFIRMATION, values),
        idempotency_key=ctx.idempotency_key,
        saga_id=ctx.saga_id,
    )
    log.info("confirmation %s sent", notification.pk)
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
