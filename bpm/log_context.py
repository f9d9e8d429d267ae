"""What every log line says about where it comes from: the request, the saga, the step, the worker.

Fields live in a context variable, so they follow the code that runs for a request or a step
(threads and asyncio tasks each see their own) and vanish when that work ends. `bound()` opens a
scope; `add()` fills in a field learnt later inside the scope (the saga's request id once the
saga row is loaded); `bind_process()` sets what holds for the whole process (an RQ worker's
name). `ContextFilter` copies the fields onto each log record, where both formatters find them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# The fields, in the order a text line shows them.
FIELDS = ("request_id", "saga_id", "step", "attempt", "worker")

_scope: ContextVar[dict[str, Any] | None] = ContextVar("bpm_log_scope", default=None)
_process: dict[str, Any] = {}


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    # An empty value says nothing: a saga started by code has no request id.
    return {name: value for name, value in fields.items() if value not in (None, "")}


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log line written inside the block (nested blocks add to outer ones)."""
    token = _scope.set({**(_scope.get() or {}), **_clean(fields)})
    try:
        yield
    finally:
        _scope.reset(token)


def add(**fields: Any) -> None:
    """Add `fields` to the innermost `bound()` block; outside any block, do nothing.

    Doing nothing outside a block is what keeps a field from outliving its work: a sweeper that
    locks a saga outside any step must not tag its later lines with that saga.
    """
    scope = _scope.get()
    if scope is not None:
        _scope.set({**scope, **_clean(fields)})


def bind_process(**fields: Any) -> None:
    """Add `fields` to every log line this process writes from now on."""
    _process.update(_clean(fields))


def unbind_process() -> None:
    """Forget what `bind_process` set (tests: a Worker built in one test names no later line)."""
    _process.clear()


def current() -> dict[str, Any]:
    """Return the fields that apply here and now."""
    return {**_process, **(_scope.get() or {})}


def current_request_id() -> str:
    """Return the id of the request being served here, or "" outside a request."""
    return str(current().get("request_id", ""))


class ContextFilter(logging.Filter):
    """Copy the current fields onto each record (a field set with `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
