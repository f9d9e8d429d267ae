"""A step's alarm (bpm/timeout.py) nested in an outer one, as in a worker under RQ's job timeout."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from bpm import timeout


class OuterRang(Exception):
    """The outer alarm (standing in for RQ's job timeout) rang."""


@pytest.fixture
def outer_alarm() -> Iterator[None]:
    """An outer SIGALRM handler that raises OuterRang; the alarm is cleared after the test."""

    def ring(signum: int, frame: FrameType | None) -> None:
        raise OuterRang

    previous = signal.signal(signal.SIGALRM, ring)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_the_step_alarm_rings_and_the_outer_one_keeps_its_remaining_time(outer_alarm):
    signal.setitimer(signal.ITIMER_REAL, 5)
    with pytest.raises(timeout.StepTimedOut), timeout.limit(0.05):
        time.sleep(2)
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 4 < remaining <= 5


def test_a_handler_that_swallows_its_step_timeout_is_still_stopped_by_the_outer_alarm(
    outer_alarm,
):
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    swallowed = 0
    with pytest.raises(OuterRang), timeout.limit(0.05):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a handler that hangs on whatever it is told
            try:
                time.sleep(0.05)
            except timeout.StepTimedOut:
                swallowed += 1
    assert swallowed == 1


def test_an_outer_alarm_due_before_the_step_timeout_rings_with_its_own_handler(outer_alarm):
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    with pytest.raises(OuterRang), timeout.limit(5):
        time.sleep(2)


def test_without_an_outer_alarm_none_is_left_behind():
    with pytest.raises(timeout.StepTimedOut), timeout.limit(0.05):
        time.sleep(2)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with timeout.limit(5):
        pass
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
