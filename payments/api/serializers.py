"""Customers: what a shop sends to open an account, and what it reads back."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpm.api.fields import MoneyField, StrictCharField, StrictEmailField
from bpm.api.serializers.base import RequestSerializer


class CustomerCreateSerializer(RequestSerializer):
    """A new customer account; the email address is optional."""

    name = StrictCharField(
        max_length=200,
        help_text="must hold a visible character: not only spaces, control or zero-width ones",
    )
    credit_limit = MoneyField()
    email = StrictEmailField(
        required=False, allow_null=True, max_length=254, help_text="where confirmations go"
    )


class CustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField(allow_null=True)
    credit_limit = MoneyField()
    available_credit = serializers.SerializerMethodField(
        help_text="the credit limit less the reserved payments"
    )
    created_at = serializers.DateTimeField()

    @extend_schema_field(MoneyField())
    def get_available_credit(self, customer: Any) -> str:
        # Computed by the payments service and handed over by the view.
        return f"{self.context['available_credit']:.2f}"
