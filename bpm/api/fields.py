"""Serializer fields that accept exactly what the schema documents, and nothing DRF would coerce.

DRF turns "1" into 1, 1 into "1" and "yes" into True. The API promises JSON types, so these
fields refuse the wrong type instead, and a request that breaks the schema is a 400, never a
surprise further down.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# Everything a database column of ours can hold: PositiveBigIntegerField's upper bound.
MAX_ID = 2**63 - 1
# A saga's input, context or a skipped step's output: generous, but bounded.
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
# Lone surrogates cannot be encoded as UTF-8, and PostgreSQL refuses NUL in text and jsonb.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# What str.strip() removes, spelled out so Python and the schema's ECMA regexes agree.
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL = r"\A[^\x00]*\Z"
NOT_BLANK = rf"\A[^\x00]*[^\x00{WHITESPACE}][^\x00]*\Z"
MONEY = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
POSITIVE_MONEY = r"^(?!0+(\.0{1,2})?$)[0-9]{1,10}(\.[0-9]{1,2})?$"


class StrictIntegerField(serializers.IntegerField):
    """An integer that must be a JSON integer (1 or 1.0, as JSON Schema has it), not a string."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A number that must be a JSON number (integer or not, finite), not a string."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A boolean that must be JSON true or false."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictCharField(serializers.CharField):
    """A JSON string, taken as it is: without NUL, and unless blank is allowed, not all spaces.

    Whitespace is not trimmed, so the lengths checked are the lengths the schema documents; the
    services strip what they store.
    """

    default_error_messages = {"invalid": "Not a valid string."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        # The same rules as DRF's NUL check and blank check, but as a pattern the schema shows.
        self.validators = [
            validator
            for validator in self.validators
            if not isinstance(validator, ProhibitNullCharactersValidator)
        ]
        if self.allow_blank:
            self.validators.append(RegexValidator(NO_NUL, "Null characters are not allowed."))
        else:
            message = "Must hold a character other than whitespace, and no null character."
            self.validators.append(RegexValidator(NOT_BLANK, message))

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    """An email address that must be a JSON string, taken as it is."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": MONEY, "format": "decimal", "example": "12.34"})
class MoneyField(serializers.Field):
    """An amount of money as a decimal string with up to 2 places, e.g. "12.34".

    Accepts exactly what its pattern matches and gives a Decimal with 2 places; JSON numbers are
    refused, since binary floats do not hold cents exactly.
    """

    pattern = MONEY
    default_error_messages = {
        "invalid": 'Give an amount as a decimal string with up to 2 places, such as "12.34".',
        "zero": "Must be more than zero.",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        # fullmatch: Python's $ also matches before a trailing newline, which "12.34\n" has.
        if not isinstance(data, str) or not re.fullmatch(MONEY, data):
            self.fail("invalid")
        try:
            amount = Decimal(data).quantize(Decimal("0.01"))
        except InvalidOperation:
            self.fail("invalid")
        if self.pattern == POSITIVE_MONEY and not amount:
            self.fail("zero")
        return amount

    def to_representation(self, value: Decimal) -> str:
        return f"{value:.2f}"


@extend_schema_field(
    {"type": "string", "pattern": POSITIVE_MONEY, "format": "decimal", "example": "12.34"}
)
class PositiveMoneyField(MoneyField):
    """An amount of money that must be more than zero."""

    pattern = POSITIVE_MONEY


# A JSON object the database can store; the schema hook adds it as a component (bpm.api.schema).
JSON_NO_NUL = r"^[^\u0000]*$"
STORABLE_OBJECT_REF = {"$ref": "#/components/schemas/StorableObject"}


@extend_schema_field(STORABLE_OBJECT_REF)
class JSONObjectField(serializers.Field):
    """A JSON object that the database can store as it is: bounded, finite, UTF-8 encodable."""

    default_error_messages = {
        "not_object": "Must be a JSON object, not {kind}.",
        "too_deep": f"Is nested more than {MAX_JSON_DEPTH} levels deep.",
        "too_big": f"Is larger than {MAX_JSON_BYTES} bytes as JSON.",
        "not_finite": "Holds a number that is not finite (too large to store).",
        "unstorable": "Holds a NUL character or an unpaired surrogate, which cannot be stored.",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_object", kind=_json_kind(data))
        self._check(data, depth=1)
        if len(json.dumps(data, ensure_ascii=False)) > MAX_JSON_BYTES:
            self.fail("too_big")
        return data

    def to_representation(self, value: Any) -> Any:
        return value

    def _check(self, value: Any, depth: int) -> None:
        if depth > MAX_JSON_DEPTH:
            self.fail("too_deep")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail("not_finite")
        if isinstance(value, str) and UNSTORABLE.search(value):
            self.fail("unstorable")
        if isinstance(value, Mapping):
            for key, item in value.items():
                self._check(key, depth)
                self._check(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                self._check(item, depth + 1)


class Rfc3339DateTimeField(serializers.DateTimeField):
    """A date and time in RFC 3339 (ISO 8601 with a time zone), such as 2026-01-31T12:00:00Z."""

    default_error_messages = {
        "invalid": "Give a date and time with a time zone, such as 2026-01-31T12:00:00Z.",
    }
    SHAPE = re.compile(
        r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
        re.ASCII,
    )

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str):
            self.fail("invalid")
        match = self.SHAPE.fullmatch(value.strip())
        if match is None:
            self.fail("invalid")
        day, hour, minute, second, fraction, zone = match.groups()
        # RFC 3339 allows a leap second, which Python's datetime cannot hold.
        second = min(int(second), 59)
        fraction = (fraction or "")[:7]
        zone = "+00:00" if zone in ("Z", "z") else zone
        text = f"{day}T{hour}:{minute}:{second:02d}{fraction}{zone}"
        try:
            return datetime.fromisoformat(text).astimezone(UTC)
        except (ValueError, OverflowError):
            self.fail("invalid")


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")
