"""What placing an order takes, as one JSON Schema derived from the limits of the rows it fills.

The place_order saga declares it as its input schema, `order_place` validates with it before
starting a saga, and the API's order serializer takes its limits from here: an input the schema
accepts is one that the saga's steps can store.
"""

from __future__ import annotations

from typing import Any

from bpm import schemas
from orders.models import Order

# Order.customer_id is a PositiveBigIntegerField: at most 2**63 - 1 on every database Django
# supports; product ids are kept to the same range.
MAX_ID = 2**63 - 1
_TOTAL = Order._meta.get_field("total")
TOTAL_DIGITS = _TOTAL.max_digits - _TOTAL.decimal_places
TOTAL_PLACES: int = _TOTAL.decimal_places
TOTAL_PATTERN = rf"^[0-9]{{1,{TOTAL_DIGITS}}}(\.[0-9]{{1,{TOTAL_PLACES}}})?$"
ZERO_PATTERN = r"^0+(\.0+)?$"
# take_payment stores the method in payments' Payment.method (a CharField of 32; a participant
# does not import another, so tests/security/test_order_input.py checks the two agree).
PAYMENT_METHOD_MAX_LENGTH = 32
MAX_PRODUCTS = 1000

ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}

SCHEMA: dict[str, Any] = {
    "$schema": schemas.DIALECT,
    "type": "object",
    "required": ["customer_id", "products", "total", "payment_method"],
    "properties": {
        "customer_id": ID,
        "products": {
            "type": "array",
            "items": ID,
            "minItems": 1,
            "maxItems": MAX_PRODUCTS,
            "description": "product ids",
        },
        "total": {
            "type": "string",
            "pattern": TOTAL_PATTERN,
            "not": {"pattern": ZERO_PATTERN},
            "description": f"a positive amount as a decimal string with up to {TOTAL_PLACES}"
            ' places, e.g. "12.50"',
        },
        "payment_method": {
            "type": "string",
            "minLength": 1,
            "maxLength": PAYMENT_METHOD_MAX_LENGTH,
            "pattern": r"\S",
            "description": "credit_card, or a test card: card_declined, card_flaky, card_down,"
            " card_slow",
        },
    },
    "additionalProperties": False,
}


def validate(value: Any, *, path: str = "input") -> None:
    """Raise InvalidInput, naming the failing path, unless `value` is an order's input."""
    schemas.validate(SCHEMA, value, path=path)
