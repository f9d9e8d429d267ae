from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Read-only: a notification records mail that has already left."""

    list_display = (
        "id",
        "recipient",
        "subject",
        "status",
        "saga_id",
        "sent_at",
        "retracted_at",
        "correction_of",
    )
    list_filter = ("status", "sent_at")
    search_fields = ("recipient", "subject", "idempotency_key", "=saga_id")
    date_hierarchy = "sent_at"
    list_select_related = ("correction_of",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False
