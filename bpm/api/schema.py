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

from bpm.api import fields
from bpm.api.idempotency import HEADER, KEY_PATTERN, REPLAYED_HEADER
from bpm.api.serializers.base import ErrorSerializer
from bpm.models import DefinitionStatus, SagaDefinition

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


def describe_storable_json(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Add the StorableJSON component: any JSON value whose strings and keys hold no NUL."""
    value_ref = fields.JSON_VALUE_REF
    result.setdefault("components", {}).setdefault("schemas", {})["StorableJSON"] = {
        "description": "Any JSON value, except strings holding NUL (the database refuses them).",
        "anyOf": [
            {"type": "string", "pattern": fields.JSON_NO_NUL},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": value_ref},
            {
                "type": "object",
                "propertyNames": {"pattern": fields.JSON_NO_NUL},
                "additionalProperties": value_ref,
            },
        ],
    }
    return result


def describe_saga_inputs(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document starting a saga as one body shape per definition, with its own input schema."""
    schemas = result.get("components", {}).get("schemas", {})
    base = schemas.get("SagaStartRequest")
    if base is None:
        return result
    variants = []
    latest_seen: set[str] = set()
    # Only published versions start sagas; a draft's input is no part of the API.
    published = SagaDefinition.objects.filter(status=DefinitionStatus.PUBLISHED)
    for definition in published.order_by("name", "-version"):
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
    """Return the input schema as it can sit inside the OpenAPI document: an object to store."""
    # A $ref inside it would resolve against the OpenAPI document, not the definition's schema.
    if not input_schema or "$ref" in repr(input_schema):
        return copy.deepcopy(fields.STORABLE_OBJECT)
    schema = _storable({key: value for key, value in input_schema.items() if key != "$schema"})
    if schema.get("type") != "object":
        return {"allOf": [copy.deepcopy(fields.STORABLE_OBJECT), schema]}
    return schema


def _storable(schema: Any) -> Any:
    """Return a copy of a JSON Schema that also refuses what the database cannot store (NUL).

    Strings without a pattern of their own get one without NUL; what the schema leaves open
    (other properties, untyped items) must be storable JSON.
    """
    if not isinstance(schema, dict):
        return schema
    schema = {key: _storable_children(key, value) for key, value in schema.items()}
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "string" in kinds and "pattern" not in schema:
        schema["pattern"] = fields.JSON_NO_NUL
    if "object" in kinds:
        schema.setdefault("propertyNames", {"pattern": fields.JSON_NO_NUL})
        if schema.get("additionalProperties", True) is True:
            schema["additionalProperties"] = fields.JSON_VALUE_REF
    if "array" in kinds and schema.get("items", True) is True:
        schema["items"] = fields.JSON_VALUE_REF
    if not schema.get("type") and not any(key in schema for key in COMBINATORS):
        schema = {"allOf": [fields.JSON_VALUE_REF, schema]} if schema else fields.JSON_VALUE_REF
    return schema


COMBINATORS = ("anyOf", "allOf", "oneOf", "not", "enum", "const", "if")
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
# Not "not" nor "if": restricting those would loosen the schema around them.
SUBSCHEMAS = ("items", "additionalProperties", "then", "else", "contains")


def _storable_children(key: str, value: Any) -> Any:
    if key in SUBSCHEMA_MAPS and isinstance(value, dict):
        return {name: _storable(item) for name, item in value.items()}
    if key in ("anyOf", "allOf", "oneOf", "prefixItems") and isinstance(value, list):
        return [_storable(item) for item in value]
    if key in SUBSCHEMAS:
        return _storable(value)
    return copy.deepcopy(value)
