"""Customer accounts, payments and the gateway's ledger in the admin.

Customers are opened and their credit limits changed through the payments services; payments and
gateway charges are written only by saga steps, so here they are read-only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet, Sum
from django.http import HttpRequest

from bpm.admin.readonly import ReadOnlyAdmin, ReadOnlyInline
from bpm.admin.saved import adopt
from payments import services
from payments.models import Customer, GatewayCharge, Payment, PaymentKey, PaymentStatus


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("id", "order_id", "amount", "method", "status", "created_at", "refunded_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    """Accounts: opened and re-limited through the services, which validate the credit limit."""

    list_display = (
        "id",
        "name",
        "email",
        "credit_limit",
        "reserved",
        "available_credit",
        "created_at",
    )
    search_fields = ("name", "email", "=id")
    search_help_text = "A name or an email address (or part of one), or a customer id."
    inlines = (PaymentInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        reserved = Sum("payments__amount", filter=Q(payments__status=PaymentStatus.RESERVED))
        return super().get_queryset(request).annotate(reserved_total=reserved)

    def get_inlines(self, request: HttpRequest, obj: Customer | None = None) -> Any:
        return () if obj is None else self.inlines

    def get_fields(self, request: HttpRequest, obj: Customer | None = None) -> Any:
        if obj is None:
            return ("name", "email", "credit_limit")
        return ("name", "email", "credit_limit", "reserved", "available_credit", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Customer | None = None) -> Any:
        return () if obj is None else ("reserved", "available_credit", "created_at")

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        if not change:
            created = services.customer_create(
                name=obj.name, email=obj.email, credit_limit=obj.credit_limit
            )
            adopt(obj, created)
            return
        if "credit_limit" in form.changed_data:
            updated = services.customer_set_credit_limit(
                customer_id=obj.pk, credit_limit=obj.credit_limit
            )
            obj.credit_limit = updated.credit_limit
        others = [name for name in form.changed_data if name != "credit_limit"]
        if others:
            obj.save(update_fields=others)

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
        "idempotency_key",
        "created_at",
        "refunded_at",
    )
    list_filter = ("status", "method", "created_at")
    search_fields = (
        "=order_id",
        "=idempotency_key",
        "=gateway_reference",
        "customer__email",
        "customer__name",
    )
    search_help_text = (
        "An order id, a payment's key or gateway reference (exactly),"
        " or a customer's name or email (or part of one)."
    )
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
    search_fields = ("=idempotency_key", "=reference")


@admin.register(PaymentKey)
class PaymentKeyAdmin(ReadOnlyAdmin):
    """Which came first for each key, the take or the refund (a VOIDED key refuses late takes).

    A key voided by a take that refused shows the refusal's reason; one voided by a refund none.
    """

    list_display = ("idempotency_key", "outcome", "reason", "decided_at")
    list_filter = ("outcome", "reason")
    search_fields = ("=idempotency_key",)
