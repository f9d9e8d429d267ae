"""Errors the engine raises to its callers, and the one a handler raises to refuse."""

from __future__ import annotations

from typing import Any


class StepFailed(Exception):
    """A handler's business refusal: never retried; the saga compensates instead."""

    def __init__(self, code: str, message: str = "", data: dict[str, Any] | None = None):
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.data = data or {}


class SagaError(Exception):
    """Base for every error the engine reports to a caller (API, admin, command)."""

    code = "error"


class NotFound(SagaError):
    code = "not_found"


class InvalidInput(SagaError):
    """Input failed validation; `path` says where."""

    code = "invalid_input"

    def __init__(self, message: str, path: str = ""):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class Conflict(SagaError):
    """The saga's current state forbids the action."""

    code = "conflict"


class PermissionDenied(SagaError):
    """The user asking lacks the permission the action needs."""

    code = "permission_denied"


class DefinitionInvalid(SagaError):
    code = "definition_invalid"


class RetryLater(Exception):
    """A technical fault after which the step waits at least `retry_after` seconds (a service's
    Retry-After), within its policy's max backoff; retried by policy like any other fault."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after
