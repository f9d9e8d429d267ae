"""Parallel branches on two real rqworker processes: siblings overlap in time, and a diamond
whose last step refuses undoes both branches before the first step."""

from __future__ import annotations

import sys

import parallel_handlers  # noqa: F401  (registers e2e.nap in this process too)
import pytest
from testkit import declare

from bpm import services
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaEvent, SagaInstance, StepRun
from bpm.states import Direction, EventType, SagaStatus

# Two workers per test and naps of 1.5 s: ~20 s with start and stop, so once, on the slow pass.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FINISHED = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.STUCK)
NAP = 1.5


def diamond() -> None:
    declare(
        "e2e_diamond",
        Step("a", "e2e.nap", "e2e.nap", after=[]),
        Step("b", "e2e.nap", "e2e.nap", after=["a"]),
        Step("c", "e2e.nap", "e2e.nap", after=["a"]),
        Step("d", "e2e.nap", "e2e.nap", after=["b", "c"]),
    )


def two_workers(processes) -> None:
    for name in ("parallel-1", "parallel-2"):
        processes.run(name, [sys.executable, "tests/e2e/parallel_handlers.py", name])


def status_of(saga: SagaInstance) -> str:
    return SagaInstance.objects.values_list("status", flat=True).get(pk=saga.pk)


def span(saga: SagaInstance, step: str, direction: str) -> tuple[float, float]:
    """Return when this step's run started and finished, by its events."""
    run = StepRun.objects.get(saga=saga, step__name=step, direction=direction)
    events = SagaEvent.objects.filter(step_run=run)
    started = events.get(type=EventType.STEP_STARTED).at.timestamp()
    finished = events.get(type=EventType.STEP_SUCCEEDED).at.timestamp()
    return started, finished


def test_parallel_steps_overlap_in_time_on_two_workers(processes, wait_for):
    diamond()
    two_workers(processes)
    saga = services.saga_start(definition="e2e_diamond", input={"nap": NAP}, actor="test")
    wait_for(lambda: status_of(saga) in FINISHED, timeout=60, message="the diamond to finish")
    saga.refresh_from_db()
    assert saga.status == SagaStatus.COMPLETED
    b, c = saga.context["b"], saga.context["c"]
    assert b["pid"] != c["pid"], "b and c ran in two work horses"
    assert max(b["started"], c["started"]) < min(b["finished"], c["finished"]), "they overlap"
    assert saga.context["d"]["started"] >= max(b["finished"], c["finished"])


def test_the_diamond_undoes_both_branches_at_once_before_the_first_step(processes, wait_for):
    diamond()
    two_workers(processes)
    saga = services.saga_start(
        definition="e2e_diamond", input={"nap": NAP, "refuse_d": True}, actor="test"
    )
    wait_for(lambda: status_of(saga) in FINISHED, timeout=60, message="the diamond to finish")
    assert status_of(saga) == SagaStatus.COMPENSATED
    undo = Direction.COMPENSATION
    (b0, b1), (c0, c1), (a0, _) = (span(saga, s, undo) for s in "bca")
    assert max(b0, c0) < min(b1, c1), "b's and c's compensations overlap"
    assert a0 >= max(b1, c1), "a is undone after both branches"
    assert not StepRun.objects.filter(saga=saga, step__name="d", direction=undo).exists()
