"""What the API remembers: the first response to each Idempotency-Key, per user."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from bpm import clock


class IdempotencyState(models.TextChoices):
    IN_PROGRESS = "IN_PROGRESS", "in progress"
    DONE = "DONE", "done"


class IdempotencyRecord(models.Model):
    """One row per (user, key): claimed before the request runs, completed with its response.

    The response is stored in the same transaction as the work it describes, so a DONE row means
    the work committed; an IN_PROGRESS row is locked by its request while the work runs, so one
    that nobody locks means the work never committed (bpm/api/idempotency.py).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the method, path and canonical JSON body: a repeat must match it exactly.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(
        max_length=16, choices=IdempotencyState.choices, default=IdempotencyState.IN_PROGRESS
    )
    # The fence: only the request holding the current token may complete or release the claim.
    token = models.UUIDField(default=uuid.uuid4)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("user", "key"), name="idempotency_user_key"),
        ]
        indexes = [models.Index(fields=("expires_at",), name="idempotency_expires")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
