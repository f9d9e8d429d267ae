"""Decide a saga's next move from its definition and the states of its step runs. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from bpm import graph
from bpm.states import Direction, FailureKind, SagaStatus, StepKind, StepStatus, StuckReason

FORWARD = Direction.FORWARD
COMPENSATION = Direction.COMPENSATION
DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
IN_FLIGHT = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING)
# No run yet (""), or one cancelled when the saga got stuck: the step is run afresh.
NOT_STARTED = ("", StepStatus.CANCELLED)


@dataclass(frozen=True)
class StepSpec:
    name: str
    kind: str
    has_compensation: bool
    # The steps this one waits for: None for the step before it, () for none (bpm/graph.py).
    after: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RunState:
    status: str
    failure_kind: str = ""


NO_RUN = RunState("")

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
    """The next move. `step` is the first of `steps`: the runs to start (RUN), the runs still in
    flight (WAIT), or the failed step that turns the saga back or holds it (COMPENSATE, STUCK)."""

    move: Move
    step: str = ""
    direction: str = ""
    reason: str = ""
    steps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.step and not self.steps:
            object.__setattr__(self, "steps", (self.step,))
        elif self.steps and not self.step:
            object.__setattr__(self, "step", self.steps[0])


def step_graph(steps: Sequence[StepSpec]) -> dict[str, tuple[str, ...]]:
    """Return each step's predecessors, the default resolved."""
    return graph.predecessors((step.name, step.after) for step in steps)


def decide(steps: Sequence[StepSpec], status: str, runs: RunStates) -> Decision:
    """Return the saga's next move."""
    if status == SagaStatus.RUNNING:
        return _decide_forward(steps, runs)
    if status == SagaStatus.COMPENSATING:
        return _decide_compensation(steps, runs)
    return Decision(Move.NOTHING)


def _decide_forward(steps: Sequence[StepSpec], runs: RunStates) -> Decision:
    """Start every step whose predecessors are done; after a failure start nothing new, let
    what is in flight finish, then turn back (before the pivot) or stop (after it)."""
    dag = step_graph(steps)
    done = {s.name for s in steps if _status(runs, s.name, FORWARD) in DONE}
    # Only a step whose predecessors are done can have run: the others wait their turn.
    frontier = [s for s in steps if s.name not in done and all(b in done for b in dag[s.name])]
    return _decide(frontier, runs, FORWARD, done_move=Move.COMPLETE)


def _decide_compensation(steps: Sequence[StepSpec], runs: RunStates) -> Decision:
    """Undo a step once the compensations of every step that waited for it are done (newest
    first when several may run); after a failed one start none, let those in flight finish."""
    undo = steps_to_compensate(steps, runs)
    dag = step_graph(steps)
    names = {s.name for s in undo}
    undone = {s.name for s in undo if _status(runs, s.name, COMPENSATION) in DONE}
    frontier = [
        s
        for s in reversed(undo)
        if s.name not in undone and graph.descendants(dag, s.name) & names <= undone
    ]
    return _decide(frontier, runs, COMPENSATION, done_move=Move.COMPENSATED)


def _decide(
    frontier: Sequence[StepSpec], runs: RunStates, direction: str, *, done_move: Move
) -> Decision:
    """Decide from the runs that may move now, in one direction."""
    if not frontier:
        return Decision(done_move)
    in_flight = tuple(s.name for s in frontier if _status(runs, s.name, direction) in IN_FLIGHT)
    failed = [s for s in frontier if _status(runs, s.name, direction) == StepStatus.FAILED]
    if failed:
        if in_flight:
            return Decision(Move.WAIT, direction=direction, steps=in_flight)
        return _failed(failed, runs, direction)
    ready = tuple(s.name for s in frontier if _status(runs, s.name, direction) in NOT_STARTED)
    if ready:
        return Decision(Move.RUN, direction=direction, steps=ready)
    return Decision(Move.WAIT, direction=direction, steps=in_flight)


def _failed(failed: Sequence[StepSpec], runs: RunStates, direction: str) -> Decision:
    """Turn back from a failed step before the pivot; stop at a failed compensation or a failed
    step after the pivot."""
    if direction == COMPENSATION:
        return Decision(Move.STUCK, failed[0].name, COMPENSATION, StuckReason.COMPENSATION_FAILED)
    turning = [s for s in failed if s.kind != StepKind.RETRIABLE]
    if turning:
        return Decision(Move.COMPENSATE, turning[0].name, FORWARD)
    first = failed[0]
    reason = (
        StuckReason.REFUSED_AFTER_PIVOT
        if _run(runs, first.name, FORWARD).failure_kind == FailureKind.REFUSED
        else StuckReason.RETRIES_EXHAUSTED
    )
    return Decision(Move.STUCK, first.name, FORWARD, reason)


def _run(runs: RunStates, name: str, direction: str) -> RunState:
    return runs.get((name, direction)) or NO_RUN


def _status(runs: RunStates, name: str, direction: str) -> str:
    run = runs.get((name, direction))
    return run.status if run is not None else ""


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
                for step in decision.steps:
                    planned.append((step, decision.direction))
                    simulated[(step, decision.direction)] = RunState(StepStatus.SUCCEEDED)
            case Move.COMPENSATE:
                status = SagaStatus.COMPENSATING
            case _:
                return planned
