"""Orders in the admin: found by id, customer or saga; never changed here."""

from __future__ import annotations

from django.contrib import admin

from bpm.admin.display import saga_link, shown
from bpm.admin.readonly import ReadOnlyAdmin
from orders.models import Order


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Read-only: an order's state belongs to the saga that created it."""

    list_display = (
        "id",
        "customer_id",
        "total",
        "state",
        "rejection_reason",
        "saga",
        "created_at",
    )
    list_filter = ("state", "rejection_reason", "created_at")
    search_fields = ("=id", "=customer_id", "=saga_id")
    search_help_text = "An order id, a customer id or a saga id, exactly."
    date_hierarchy = "created_at"
    fields = (
        "customer_id",
        "product_ids",
        "total",
        "state",
        "rejection_reason",
        "saga",
        "saga_id",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    saga = shown("saga_id", saga_link, "saga", ordering="saga_id")
