"""Orders in the admin: found by id, customer or saga; never changed here."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString

from bpm.admin.display import saga_link
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    @admin.display(description="saga", ordering="saga_id")
    def saga(self, order: Order) -> SafeString | str:
        return saga_link(order.saga_id)
