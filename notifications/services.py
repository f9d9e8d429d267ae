"""Notifications: messages sent through Django's email framework, and their retraction.

Sending is at least once: the mail goes out before the row is recorded, so a crash in between
sends it again on the next attempt, while a key that is already recorded never sends again.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from notifications import mail
from notifications.errors import NotificationAlreadyRetracted, NotificationNotFound
from notifications.models import Notification, NotificationStatus

SUBJECT_MAX_LENGTH = Notification._meta.get_field("subject").max_length or 200


def notification_send(
    *,
    recipient: str,
    subject: str,
    body: str,
    idempotency_key: str,
    saga_id: uuid.UUID | None = None,
) -> Notification:
    """Send a message once per key; a key already recorded returns its notification unsent.

    Raises mail.MailBounced when the mail server refuses the recipient (a fault worth retrying
    after the address is fixed), ValidationError for a malformed message.
    """
    return _send(
        recipient=recipient,
        subject=subject,
        body=body,
        idempotency_key=idempotency_key,
        saga_id=saga_id,
    )


def notification_retract(*, notification_id: int, reason: str) -> Notification:
    """Send a correction for a notification, mark it RETRACTED and return the correction."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "say why the message is retracted"})
    original = notification_get(notification_id=notification_id)
    if original.status == NotificationStatus.RETRACTED:
        raise NotificationAlreadyRetracted(
            f"notification {original.pk} was already retracted at"
            f" {original.retracted_at:%Y-%m-%d %H:%M:%S %Z}"
        )
    correction = _send(
        recipient=original.recipient,
        subject=_truncate(f"Correction: {original.subject}"),
        body=(
            f'Please disregard our message "{original.subject}" of'
            f" {original.sent_at:%Y-%m-%d %H:%M %Z}.\n\n{reason}\n"
        ),
        # Stable, so a retraction interrupted after sending does not send a second correction.
        idempotency_key=f"retraction-of:{original.pk}",
        saga_id=original.saga_id,
        correction_of=original,
    )
    with transaction.atomic():
        original = Notification.objects.select_for_update().get(pk=original.pk)
        if original.status == NotificationStatus.SENT:
            original.retract()
            original.save()
    return correction


def notification_get(*, notification_id: int) -> Notification:
    """Return the notification with this id, or raise NotificationNotFound."""
    try:
        return Notification.objects.get(pk=notification_id)
    except Notification.DoesNotExist:
        raise NotificationNotFound(f"no notification with id {notification_id}") from None


def notification_for_key(*, idempotency_key: str) -> Notification | None:
    """Return the notification sent under this idempotency key, if any."""
    return Notification.objects.filter(idempotency_key=idempotency_key).first()


def notification_correction(*, notification_id: int) -> Notification | None:
    """Return the correction that retracted this notification, if it was retracted."""
    return Notification.objects.filter(correction_of_id=notification_id).order_by("id").first()


def _send(
    *,
    recipient: str,
    subject: str,
    body: str,
    idempotency_key: str,
    saga_id: uuid.UUID | None,
    correction_of: Notification | None = None,
) -> Notification:
    existing = notification_for_key(idempotency_key=idempotency_key)
    if existing is not None:
        return existing
    notification = Notification(
        recipient=recipient.strip(),
        subject=subject,
        body=body,
        idempotency_key=idempotency_key,
        saga_id=saga_id,
        correction_of=correction_of,
    )
    # The key's uniqueness was checked above; a protected FSM field cannot be re-assigned.
    notification.full_clean(exclude=["idempotency_key", "status"])
    mail.deliver(
        recipient=notification.recipient,
        subject=subject,
        body=body,
        idempotency_key=idempotency_key,
    )
    try:
        with transaction.atomic():
            notification.save()
    except IntegrityError:
        # A concurrent delivery of the same step recorded it first (each sent its copy).
        existing = notification_for_key(idempotency_key=idempotency_key)
        if existing is None:
            raise
        return existing
    return notification


def _truncate(subject: str) -> str:
    if len(subject) <= SUBJECT_MAX_LENGTH:
        return subject
    return subject[: SUBJECT_MAX_LENGTH - 1] + "…"
