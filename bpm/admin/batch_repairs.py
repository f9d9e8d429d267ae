"""Batch repairs in the admin: read only; each links to its dashboard page (progress, cancel)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from bpm.admin.readonly import ReadOnlyAdmin
from bpm.models import Batch


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    """Batches are started from the saga list (or "select all" here) and run by the workers."""

    list_display = (
        "id",
        "action",
        "status",
        "progress",
        "actor",
        "created_at",
        "reason",
        "dashboard",
    )
    list_filter = ("status", "action")
    search_fields = ("=id", "actor", "reason")
    ordering = ("-created_at", "-id")
    fields = (
        "status",
        "action",
        "filter_query",
        "patch",
        "output",
        "reason",
        "actor",
        "cancelled_by",
        "created_at",
        "updated_at",
        "finished_at",
        "matched",
        "done",
        "refused",
        "failed",
    )

    @admin.display(description="progress")
    def progress(self, batch: Batch) -> str:
        return f"{batch.settled} / {batch.matched} ({batch.percent}%)"

    @admin.display(description="results")
    def dashboard(self, batch: Batch) -> SafeString:
        url = reverse("dashboard:batch", args=[batch.pk])
        return format_html('<a href="{}">progress and results</a>', url)
