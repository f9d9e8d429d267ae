"""Decide a saga's next move from its definition and the states of its step runs. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from bpm.states import Direction, FailureKind, SagaStatus, StepKind, StepStatus, StuckReason

FORWARD = Direction.FORWARD
COMPENSATION = Direction.COMPENSATION
DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
IN_FLIGHT = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING)


@dataclass(frozen=True)
class StepSpec:
    name: str
    kind: str
    has_compensation: bool


@dataclass(frozen=True)
class RunState:
    status: str
    failure_kind: str = ""


RunStates = Mapping[tuple[str, str], RunState]
"""The state of the latest run of each (step name, direction)."""


class Move(Enum):
    RUN = "run"
    WAIT = "wait"
    COMPLETE = "complete"
    COMPENSATE = "compensate"
    COMPENSATED = "compensated"
    STUCK = "stuck"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Decision:
    move: Move
    step: str = ""
    direction: str = ""
    reason: str = ""


def decide(steps: Sequence[StepSpec], status: str, runs: RunStates) -> Decision:
    """Return the saga's next move."""
    if status == SagaStatus.RUNNING:
        return _decide_forward(steps, runs)
    if status == SagaStatus.COMPENSATING:
        return _decide_compensation(steps, runs)
    return Decision(Move.NOTHING)


def _decide_forward(steps: Sequence[StepSpec], runs: RunStates) -> Decision:
    for step in steps:
        run = runs.get((step.name, FORWARD))
        if run is None or run.status == StepStatus.CANCELLED:
            return Decision(Move.RUN, step.name, FORWARD)
        if run.status in IN_FLIGHT:
            return Decision(Move.WAIT, step.name, FORWARD)
        if run.status in DONE:
            continue
        # FAILED: before the pivot the saga turns back; after it, it may only go forward.
        if step.kind != StepKind.RETRIABLE:
            return Decision(Move.COMPENSATE, step.name, FORWARD)
        reason = (
            StuckReason.REFUSED_AFTER_PIVOT
            if run.failure_kind == FailureKind.REFUSED
            else StuckReason.RETRIES_EXHAUSTED
        )
        return Decision(Move.STUCK, step.name, FORWARD, reason)
    return Decision(Move.COMPLETE)


def _decide_compensation(steps: Sequence[StepSpec], runs: RunStates) -> Decision:
    for step in reversed(steps_to_compensate(steps, runs)):
        run = runs.get((step.name, COMPENSATION))
        if run is None or run.status == StepStatus.CANCELLED:
            return Decision(Move.RUN, step.name, COMPENSATION)
        if run.status in IN_FLIGHT:
            return Decision(Move.WAIT, step.name, COMPENSATION)
        if run.status == StepStatus.FAILED:
            return Decision(Move.STUCK, step.name, COMPENSATION, StuckReason.COMPENSATION_FAILED)
    return Decision(Move.COMPENSATED)


def steps_to_compensate(steps: Sequence[StepSpec], runs: RunStates) -> list[StepSpec]:
    """Return, in forward order, the steps whose effect must be undone.

    A step that succeeded is undone. A step whose retries ran out may have taken effect before
    its last fault, so it is undone too (for a transactional handler the barrier turns that into a
    recorded no-op when the action never committed). A refused or skipped step took no effect.
    """
    undo = []
    for step in steps:
        run = runs.get((step.name, FORWARD))
        if run is None or not step.has_compensation:
            continue
        if run.status == StepStatus.SUCCEEDED or (
            run.status == StepStatus.FAILED and run.failure_kind == FailureKind.EXHAUSTED
        ):
            undo.append(step)
    return undo


def remaining(steps: Sequence[StepSpec], status: str, runs: RunStates) -> list[tuple[str, str]]:
    """Return the (step, direction) pairs still to run if every one of them succeeds, in order."""
    simulated = dict(runs)
    planned: list[tuple[str, str]] = []
    while True:
        decision = decide(steps, status, simulated)
        match decision.move:
            case Move.RUN | Move.WAIT:
                planned.append((decision.step, decision.direction))
                simulated[(decision.step, decision.direction)] = RunState(StepStatus.SUCCEEDED)
            case Move.COMPENSATE:
                status = SagaStatus.COMPENSATING
            case _:
                return planned
