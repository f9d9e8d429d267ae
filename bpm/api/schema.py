"""The OpenAPI schema: every status code documented with its body, exact request shapes.

Every operation documents the errors any request may meet (401, 403, 406, 429); views add the
ones their own input can cause. Two hooks tighten what drf-spectacular generates: request bodies
refuse unknown fields (as the serializers do), and starting a saga documents each definition's
own input schema, read from the database when the schema is served.
"""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status

from bpm.api.idempotency import HEADER, KEY_PATTERN, REPLAYED_HEADER
from bpm.api.serializers import ErrorSerializer
from bpm.models import SagaDefinition

DESCRIPTIONS = {
    status.HTTP_400_BAD_REQUEST: "Bad input: malformed JSON, a wrong type, an unknown field, a "
    "value out of range, or a saga input its definition's schema refuses (details name the path).",
    status.HTTP_401_UNAUTHORIZED: "No credentials, or wrong ones: send `Authorization: Token <key>`"
    " or a session cookie.",
    status.HTTP_403_FORBIDDEN: "Signed in, but lacking the permission this needs (or the CSRF "
    "token, with a session).",
    status.HTTP_404_NOT_FOUND: "No such resource (or an unreadable page cursor).",
    status.HTTP_406_NOT_ACCEPTABLE: "The Accept header asks for something other than JSON.",
    status.HTTP_409_CONFLICT: "The current state forbids this, or a request with the same "
    "Idempotency-Key is still in progress.",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "The body is not application/json.",
    status.HTTP_422_UNPROCESSABLE_ENTITY: "The Idempotency-Key was already used for a different "
    "request.",
    status.HTTP_429_TOO_MANY_REQUESTS: "Too many requests: wait for the seconds Retry-After says.",
}
COMMON = (
    status.HTTP_401_UNAUTHORIZED,
    status.HTTP_403_FORBIDDEN,
    status.HTTP_406_NOT_ACCEPTABLE,
    status.HTTP_429_TOO_MANY_REQUESTS,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    location=OpenApiParameter.HEADER,
    pattern=KEY_PATTERN,
    description="Makes a retry safe: a repeat with the same key and body gets the first "
    "response again (for 24 hours), and never creates anything twice.",
)
LOCATION = OpenApiParameter(
    "Location",
    location=OpenApiParameter.HEADER,
    response=[status.HTTP_201_CREATED],
    required=True,
    description="The URL of what was created.",
)
REPLAYED = OpenApiParameter(
    REPLAYED_HEADER,
    location=OpenApiParameter.HEADER,
    response=[status.HTTP_201_CREATED],
    enum=["true"],
    description="Present when this is the stored response to an earlier request with the key.",
)
CREATE_PARAMETERS = [IDEMPOTENCY_KEY, LOCATION, REPLAYED]


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Return the error responses for `extend_schema(responses=...)`."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=DESCRIPTIONS[code]) for code in codes
    }


class AutoSchema(openapi.AutoSchema):
    """Adds the errors every request may meet to each operation's responses."""

    def get_description(self) -> str:  # type: ignore[override]
        # Only what extend_schema says: the views' docstrings are written for programmers.
        return ""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in COMMON:
            if str(code) not in responses:
                response = self._get_response_for_code(ErrorSerializer, str(code))
                response["description"] = DESCRIPTIONS[code]
                responses[str(code)] = response
        return responses


def forbid_unknown_request_fields(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Say in the schema what the serializers enforce: a request body has no other fields."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result


def describe_saga_inputs(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document starting a saga as one body shape per definition, with its own input schema."""
    schemas = result.get("components", {}).get("schemas", {})
    base = schemas.get("SagaStartRequest")
    if base is None:
        return result
    variants = []
    latest_seen: set[str] = set()
    for definition in SagaDefinition.objects.order_by("name", "-version"):
        variants.append(_variant(base, definition, pinned=True))
        if definition.is_active and definition.name not in latest_seen:
            latest_seen.add(definition.name)
            variants.append(_variant(base, definition, pinned=False))
    if variants:
        schemas["SagaStartRequest"] = {
            "description": "One shape per definition: its name, optionally a version, and an"
            " input its schema accepts. Without a version, the latest active one starts.",
            "anyOf": variants,
        }
    return result


def _variant(base: dict[str, Any], definition: SagaDefinition, *, pinned: bool) -> dict[str, Any]:
    variant = copy.deepcopy(base)
    properties = variant["properties"]
    properties["definition"] = {"type": "string", "const": definition.name}
    if pinned:
        properties["version"] = {"type": "integer", "const": definition.version}
        variant["required"] = sorted({*variant.get("required", []), "version"})
    else:
        properties.pop("version", None)
    properties["input"] = {
        **_embeddable(definition.input_schema),
        "description": f"what {definition.name} v{definition.version}'s input schema accepts",
    }
    variant["title"] = f"{definition.name} v{definition.version}" if pinned else definition.name
    return variant


def _embeddable(input_schema: dict[str, Any] | None) -> dict[str, Any]:
    """Return the input schema as it can sit inside the OpenAPI document, always an object."""
    # A $ref inside it would resolve against the OpenAPI document, not the definition's schema.
    if not input_schema or "$ref" in repr(input_schema):
        return {"type": "object"}
    schema = {key: value for key, value in input_schema.items() if key != "$schema"}
    if schema.get("type") != "object":
        return {"allOf": [{"type": "object"}, schema]}
    return schema
