"""The place_order saga: create the order, take the payment, approve, then confirm by mail."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from bpm import registry
from bpm.declarations import (
    COMPENSATABLE,
    PIVOT,
    RETRIABLE,
    RetryPolicy,
    SagaDeclaration,
    StepDeclaration,
)

# A positive decimal with up to 10 digits before the point and 2 after it (Order.total's shape).
TOTAL_PATTERN = r"^(?!0+(\.0{1,2})?$)\d{1,10}(\.\d{1,2})?$"

INPUT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["customer_id", "products", "total", "payment_method"],
    "properties": {
        "customer_id": {"type": "integer", "minimum": 1},
        "products": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1},
            "minItems": 1,
        },
        "total": {
            "type": "string",
            "pattern": TOTAL_PATTERN,
            "description": 'amount as a decimal string, e.g. "12.50"',
        },
        "payment_method": {
            "type": "string",
            "description": "credit_card, or a test card: card_declined, card_flaky, card_down,"
            " card_slow",
        },
    },
    "additionalProperties": False,
}

DESCRIPTION = (
    "Creates a PENDING order, reserves its total against the customer's credit by charging the"
    " card, approves the order (the point of no return) and mails a confirmation. A refused"
    " payment rejects the order (INSUFFICIENT_CREDIT, UNKNOWN_CUSTOMER, PAYMENT_DECLINED); a"
    " payment that keeps failing refunds and cancels it. After approval the saga only goes"
    " forward: a confirmation that cannot be sent leaves the saga stuck for an operator."
)


def place_order(*, backoff_scale: float = 1.0) -> SagaDeclaration:
    """Return the place_order declaration, its backoffs multiplied by `backoff_scale`."""

    def policy(max_attempts: int, initial: float, max_backoff: float) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=max_attempts,
            initial_backoff=initial * backoff_scale,
            multiplier=2,
            max_backoff=max_backoff * backoff_scale,
            jitter=0.2,
        )

    return SagaDeclaration(
        name="place_order",
        title="Place an order",
        description=DESCRIPTION,
        input_schema=INPUT_SCHEMA,
        steps=(
            StepDeclaration(
                name="create_order",
                action="orders.create_order",
                compensation="orders.reject_order",
                kind=COMPENSATABLE,
            ),
            StepDeclaration(
                name="take_payment",
                action="payments.take_payment",
                compensation="payments.refund_payment",
                kind=COMPENSATABLE,
                retry=policy(4, initial=0.5, max_backoff=10),
                timeout=10,
            ),
            StepDeclaration(name="approve_order", action="orders.approve_order", kind=PIVOT),
            StepDeclaration(
                name="send_confirmation",
                action="notifications.send_confirmation",
                kind=RETRIABLE,
                retry=policy(5, initial=1, max_backoff=30),
            ),
        ),
    )


def backoff_scale_from_settings() -> float:
    """Return settings.PLACE_ORDER_BACKOFF_SCALE (default 1.0), refusing a non-positive one."""
    scale = getattr(settings, "PLACE_ORDER_BACKOFF_SCALE", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        raise ImproperlyConfigured(f"PLACE_ORDER_BACKOFF_SCALE={scale!r} must be a positive number")
    return float(scale)


PLACE_ORDER = registry.declare(place_order(backoff_scale=backoff_scale_from_settings()))
