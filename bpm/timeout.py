"""Interrupt a handler that runs past its step's timeout, keeping any outer alarm (RQ's) alive."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class StepTimedOut(Exception):
    """The handler ran past its step's timeout."""


@contextmanager
def limit(seconds: float) -> Iterator[None]:
    """Raise StepTimedOut in the handler after `seconds`; a no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise StepTimedOut(f"step exceeded its timeout of {seconds:g}s")

    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, expire)
    outer_remaining, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if outer_remaining:
            left = outer_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
