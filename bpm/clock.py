"""The engine's only source of the current time, so tests can move it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)


def now() -> datetime:
    """Return the current time (UTC), shifted when a test has moved the clock."""
    return timezone.now() + _offset


def advance(seconds: float) -> None:
    """Move the clock forward; used by tests that fake the passage of time."""
    global _offset
    _offset += timedelta(seconds=seconds)


def reset() -> None:
    """Put the clock back to real time."""
    global _offset
    _offset = timedelta(0)
