"""Delivery through Django's email framework, with an address that always bounces.

Any recipient at the domain ``bounce.invalid`` is refused by the (simulated) mail server on every
attempt, so a saga step that writes to it keeps failing: the demo's way to get stuck after the
pivot.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage

BOUNCING_DOMAIN = "@bounce.invalid"


class MailBounced(Exception):
    """The mail server refused the message for this recipient."""


def deliver(*, recipient: str, subject: str, body: str, idempotency_key: str) -> None:
    """Send one message to one recipient, or raise MailBounced."""
    if recipient.lower().endswith(BOUNCING_DOMAIN):
        raise MailBounced(f"the mail server refused {recipient}: mailbox does not exist")
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        # Lets a receiving system drop a duplicate delivered by an at-least-once retry.
        headers={"X-Idempotency-Key": idempotency_key},
    )
    message.send(fail_silently=False)
