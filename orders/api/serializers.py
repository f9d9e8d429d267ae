"""Orders: what a shop sends to place one, and what it reads back."""

from __future__ import annotations

from rest_framework import serializers

from bpm.api.fields import MoneyField, PositiveMoneyField, StrictCharField, StrictIntegerField
from bpm.api.serializers.base import RequestSerializer
from orders import order_input
from orders.models import OrderState, RejectionReason


class OrderCreateSerializer(RequestSerializer):
    """A new order, decided by its place_order saga.

    Its limits are those of orders.order_input, whose schema order_place validates with too.
    """

    customer_id = StrictIntegerField(min_value=1, max_value=order_input.MAX_ID)
    products = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=order_input.MAX_ID),
        min_length=1,
        max_length=order_input.MAX_PRODUCTS,
        help_text="product ids",
    )
    total = PositiveMoneyField()
    payment_method = StrictCharField(
        max_length=order_input.PAYMENT_METHOD_MAX_LENGTH,
        help_text="credit_card, or a test card: card_declined, card_flaky, card_down, card_slow",
    )


class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    products = serializers.ListField(child=serializers.IntegerField(), source="product_ids")
    total = MoneyField()
    state = serializers.ChoiceField(choices=OrderState.choices)
    rejection_reason = serializers.ChoiceField(choices=RejectionReason.choices, allow_null=True)
    saga = serializers.UUIDField(source="saga_id", help_text="the place_order saga deciding it")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
