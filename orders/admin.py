from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from orders.models import Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-only: an order's state belongs to the saga that created it."""

    list_display = (
        "id",
        "customer_id",
        "total",
        "state",
        "rejection_reason",
        "saga_id",
        "created_at",
        "updated_at",
    )
    list_filter = ("state", "rejection_reason", "created_at")
    search_fields = ("=id", "=customer_id", "=saga_id")
    date_hierarchy = "created_at"
    readonly_fields = (
        "customer_id",
        "product_ids",
        "total",
        "state",
        "rejection_reason",
        "saga_id",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False
