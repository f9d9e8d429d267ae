"""What every request body and every error share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class RequestSerializer(serializers.Serializer):
    """A request body: unknown fields are an error, not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {str(name): ["Unknown field."] for name in unknown}
                )
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="stable, machine-readable, e.g. invalid, not_found")
    message = serializers.CharField(help_text="for people")
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='per field, by path (e.g. "input.total", "products[0]"): what is wrong',
    )
