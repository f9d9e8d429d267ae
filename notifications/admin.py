"""Notifications in the admin: mail that has left, looked up by recipient, subject or saga."""

from __future__ import annotations

from django.contrib import admin

from bpm.admin.display import saga_link, shown
from bpm.admin.readonly import ReadOnlyAdmin
from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Read-only: a notification records mail that has already left."""

    list_display = (
        "id",
        "recipient",
        "subject",
        "status",
        "saga",
        "sent_at",
        "retracted_at",
        "correction_of",
    )
    list_filter = ("status", "sent_at")
    search_fields = ("recipient", "subject", "=idempotency_key", "=saga_id")
    search_help_text = "A recipient or subject (or part of one), a saga id or a key, exactly."
    date_hierarchy = "sent_at"
    list_select_related = ("correction_of",)
    fields = (
        "recipient",
        "subject",
        "body",
        "status",
        "saga",
        "saga_id",
        "idempotency_key",
        "sent_at",
        "retracted_at",
        "correction_of",
    )
    readonly_fields = fields

    saga = shown("saga_id", saga_link, "saga", ordering="saga_id")
