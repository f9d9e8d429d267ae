"""The OpenAPI schema: every status code documented with its body, exact request shapes.

Every operation documents the errors any request may meet (401, 403, 406, 429); views add the
ones their own input can cause. Request bodies refuse unknown fields (as the serializers do).

The document is static: it never reads the database, so it is the same for every deployment of
a release, `manage.py check` and generating it need no database, and a client generated from it
does not change when an operator composes a definition. A saga's input is documented as a JSON
object; each definition's own input schema is served by /api/v1/definitions/{name}/.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status

from bpm.api import fields
from bpm.api.idempotency import HEADER, KEY_PATTERN, REPLAYED_HEADER
from bpm.api.serializers.base import ErrorSerializer

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
    """Add the StorableObject component: a JSON object whose strings and keys hold no NUL.

    Recursive through objects only, and with arrays spelled out one level deep: client
    generators cannot express a union that holds itself (an array of arrays is accepted by the
    server but not described).
    """
    string = {"type": "string", "pattern": fields.JSON_NO_NUL}
    scalars = [string, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
    item = {"anyOf": [*scalars, fields.STORABLE_OBJECT_REF]}
    value = {"anyOf": [*scalars, {"type": "array", "items": item}, fields.STORABLE_OBJECT_REF]}
    result.setdefault("components", {}).setdefault("schemas", {})["StorableObject"] = {
        "type": "object",
        "description": "Any JSON object, except strings or keys holding NUL (the database"
        " refuses them).",
        "propertyNames": {"pattern": fields.JSON_NO_NUL},
        "additionalProperties": value,
    }
    return result
