"""Every error the API answers with, in one shape: {"code", "message", "details"}.

One exception handler turns the engine's errors and DRF's own into that shape, so a view never
builds an error response itself. An app that uses the engine raises subclasses of the engine's
NotFound and Conflict, which this handler answers with 404 and 409 like the engine's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.text import capfirst
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from bpm import errors as engine
from bpm import outages

NON_FIELD = "non_field_errors"

# Domain errors by the status and code they answer with (the first match wins).
DOMAIN_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (engine.NotFound, status.HTTP_404_NOT_FOUND, "not_found"),
    (engine.Conflict, status.HTTP_409_CONFLICT, "conflict"),
    (engine.PermissionDenied, status.HTTP_403_FORBIDDEN, "permission_denied"),
    (Http404, status.HTTP_404_NOT_FOUND, "not_found"),
    (DjangoPermissionDenied, status.HTTP_403_FORBIDDEN, "permission_denied"),
)


class IdempotencyKeyInUse(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_use"
    default_detail = "A request with this Idempotency-Key is still in progress; retry later."


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was already used for a different request: send the same method,"
        " path and body to get the first response again, or use a new key."
    )


def handle_exception(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """Return the error response for `exc`, or None to let an unexpected error surface."""
    service = outages.unreachable_service(exc)
    if service is not None:
        return _unavailable(service, exc, context)
    answer = _describe(exc)
    if answer is None:
        return None
    status_code, body = answer
    headers = {}
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    set_rollback()
    return Response(body, status=status_code, headers=headers)


def _unavailable(service: str, exc: Exception, context: Mapping[str, Any]) -> Response:
    """Return the 503 for a request that found the database or Redis unreachable."""
    outages.log_outage(service, exc, context["request"])
    set_rollback()
    body = error_body(
        "service_unavailable",
        f"{capfirst(service)} is unreachable; retry in {outages.RETRY_AFTER} seconds.",
    )
    return Response(
        body,
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(outages.RETRY_AFTER)},
    )


def error_body(code: str, message: str, details: dict[str, list[str]] | None = None) -> dict:
    """Return an error in the API's shape."""
    return {"code": code, "message": message, "details": details or {}}


def _describe(exc: Exception) -> tuple[int, dict] | None:
    if isinstance(exc, engine.InvalidInput):
        return status.HTTP_400_BAD_REQUEST, _invalid(exc.code, _field_errors(exc))
    if isinstance(exc, DjangoValidationError):
        details = _flatten(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
        if _is_uniqueness(exc):
            # Well-formed, but something with that value exists already.
            return status.HTTP_409_CONFLICT, _invalid("conflict", details)
        return status.HTTP_400_BAD_REQUEST, _invalid("invalid", details)
    if isinstance(exc, exceptions.ValidationError):
        return status.HTTP_400_BAD_REQUEST, _invalid("invalid", _flatten(exc.detail))
    if isinstance(exc, exceptions.APIException):
        return exc.status_code, error_body(_code_of(exc), _text(exc.detail))
    for kind, status_code, code in DOMAIN_ERRORS:
        if isinstance(exc, kind):
            return status_code, error_body(code, str(exc) or code.replace("_", " "))
    if isinstance(exc, engine.SagaError):
        return status.HTTP_400_BAD_REQUEST, error_body(exc.code, str(exc))
    return None


def _is_uniqueness(exc: DjangoValidationError) -> bool:
    """Return whether every error says a value is taken already."""
    if hasattr(exc, "error_dict"):
        errors = [error for found in exc.error_dict.values() for error in found]
    else:
        errors = exc.error_list
    return bool(errors) and all(error.code == "unique" for error in errors)


def _invalid(code: str, details: dict[str, list[str]]) -> dict:
    path, messages = next(iter(details.items()), (NON_FIELD, ["invalid input"]))
    message = messages[0] if path == NON_FIELD else f"{path}: {messages[0]}"
    others = sum(len(found) for found in details.values()) - 1
    if others:
        message += f" (and {others} more; see details)"
    return error_body(code, message, details)


def _field_errors(exc: engine.InvalidInput) -> dict[str, list[str]]:
    text = str(exc)
    if not exc.path:
        return {NON_FIELD: [text]}
    return {exc.path: [text.removeprefix(f"{exc.path}: ")]}


def _flatten(detail: Any, path: str = "") -> dict[str, list[str]]:
    """Return {"a.b[0]": [messages]} from DRF's or Django's nested error structures."""
    found: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for raw_key, value in detail.items():
            key = str(raw_key)
            # DRF keys a list's item errors by index.
            if isinstance(raw_key, int) and path:
                child = f"{path}[{key}]"
            elif key in (NON_FIELD, "__all__"):
                child = path or NON_FIELD
            else:
                child = f"{path}.{key}" if path else key
            for name, messages in _flatten(value, child).items():
                found.setdefault(name, []).extend(messages)
    elif isinstance(detail, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in detail):
            found[path or NON_FIELD] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    found.update(_flatten(item, f"{path}[{index}]"))
    else:
        found[path or NON_FIELD] = [str(detail)]
    return found


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _text(detail: Any) -> str:
    if isinstance(detail, list | tuple):
        return "; ".join(_text(item) for item in detail)
    if isinstance(detail, Mapping):
        return "; ".join(f"{key}: {_text(value)}" for key, value in detail.items())
    return str(detail)
