from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.db.models import Q, QuerySet, Sum
from django.http import HttpRequest

from payments.models import Customer, GatewayCharge, Payment, PaymentStatus


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: operators may look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class PaymentInline(admin.TabularInline):
    model = Payment
    fields = ("id", "order_id", "amount", "method", "status", "created_at", "refunded_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "email", "credit_limit", "reserved", "available_credit")
    search_fields = ("name", "email", "=id")
    readonly_fields = ("created_at",)
    inlines = (PaymentInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        reserved = Sum("payments__amount", filter=Q(payments__status=PaymentStatus.RESERVED))
        return super().get_queryset(request).annotate(reserved_total=reserved)

    @admin.display(description="reserved")
    def reserved(self, customer: Customer) -> Decimal:
        return getattr(customer, "reserved_total", None) or Decimal("0.00")

    @admin.display(description="available credit")
    def available_credit(self, customer: Customer) -> Decimal:
        return customer.credit_limit - self.reserved(customer)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "customer",
        "order_id",
        "amount",
        "method",
        "status",
        "created_at",
        "refunded_at",
    )
    list_filter = ("status", "method", "created_at")
    search_fields = ("=order_id", "idempotency_key", "gateway_reference", "customer__email")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"


@admin.register(GatewayCharge)
class GatewayChargeAdmin(ReadOnlyAdmin):
    """The simulated card gateway's own ledger, shown to explain what the outside world saw."""

    list_display = (
        "idempotency_key",
        "method",
        "amount",
        "status",
        "attempts",
        "reference",
        "updated_at",
    )
    list_filter = ("status", "method")
    search_fields = ("idempotency_key", "reference")
