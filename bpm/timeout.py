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
    """Raise StepTimedOut in the handler after `seconds`; a no-op outside the main thread.

    An outer alarm (RQ's job timeout, set by a worker around the whole job) keeps its own time:
    when it is due first, it rings with its own handler; when the step's alarm rings first, the
    outer one is re-armed before StepTimedOut is raised, so a handler that swallows StepTimedOut
    and hangs on is still stopped by the job timeout.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    started = time.monotonic()
    outer_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    outer_due_first = 0 < outer_remaining <= seconds
    armed = True

    def restore_outer() -> None:
        nonlocal armed
        if not armed:
            return
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if outer_remaining:
            left = outer_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))

    def expire(signum: int, frame: FrameType | None) -> None:
        restore_outer()
        if outer_due_first:
            return  # the outer alarm is due: re-armed, it rings within a millisecond
        raise StepTimedOut(f"step exceeded its timeout of {seconds:g}s")

    previous_handler = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, outer_remaining if outer_due_first else seconds)
    try:
        yield
    finally:
        restore_outer()
