"""Messages sent by email, and their retraction by a correction message."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition


class NotificationStatus(models.TextChoices):
    SENT = "SENT", "sent"
    RETRACTED = "RETRACTED", "retracted"


class Notification(FSMModelMixin, models.Model):
    recipient = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = FSMField(
        max_length=16,
        choices=NotificationStatus.choices,
        default=NotificationStatus.SENT,
        protected=True,
    )
    # One message per key, however often the step that sends it is delivered.
    idempotency_key = models.CharField(max_length=200, unique=True)
    saga_id = models.UUIDField(null=True, blank=True, db_index=True)
    sent_at = models.DateTimeField(default=timezone.now, editable=False)
    retracted_at = models.DateTimeField(null=True, blank=True)
    # Set on the correction message that retracted another one.
    correction_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections"
    )

    class Meta:
        ordering = ("-sent_at", "-id")

    def __str__(self) -> str:
        return f"{self.subject!r} to {self.recipient} ({self.status})"

    @transition(field=status, source=NotificationStatus.SENT, target=NotificationStatus.RETRACTED)
    def retract(self) -> None:
        self.retracted_at = timezone.now()
