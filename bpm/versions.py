"""Whether a running or stuck saga may move to another version of its definition. Pure: no I/O.

A saga moves from version N to version M when what it already did means the same in M: every
step it has a run of (forward or compensation, whatever the run's status) exists in M under the
same name, with the same action and compensation handlers and the same kind, in the same order,
and no step new in M comes before one it already ran (M would run it out of order). The step it
runs next must exist in M too. Steps it has not reached may change, be added or removed; retry
policy, timeout and queue may change (a move is often made for those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bpm.states import SagaStatus

MOVABLE_STATUSES = (SagaStatus.RUNNING, SagaStatus.STUCK)


@dataclass(frozen=True)
class StepShape:
    name: str
    action: str
    compensation: str
    kind: str


@dataclass(frozen=True)
class VersionShape:
    name: str
    version: int
    published: bool
    steps: tuple[StepShape, ...]

    def step(self, name: str) -> StepShape | None:
        return next((step for step in self.steps if step.name == name), None)


@dataclass(frozen=True)
class SagaShape:
    status: str
    # The names of the steps the saga has a run of, in the order of its version's steps.
    ran: tuple[str, ...]
    # The step the saga would run next forward ("" when none is known or due).
    next_step: str = ""
    # A step whose run is RUNNING: a worker holds it now (or held it until its lease expired).
    in_flight: str = ""
    in_flight_lease_live: bool = False


def refusal(saga: SagaShape, source: VersionShape, target: VersionShape) -> str:
    """Return why the saga cannot move from `source` to `target`, or "" when it can."""
    for check in (_versions, _status, _in_flight):
        why = check(saga, source, target)
        if why:
            return why
    return _steps(saga, source, target)


def _versions(saga: SagaShape, source: VersionShape, target: VersionShape) -> str:
    if target.name != source.name:
        return (
            f"{target.name} v{target.version} is a version of another definition"
            f" ({source.name}): a saga moves only between versions of its own"
        )
    if target.version == source.version:
        return f"it already runs {source.name} v{source.version}"
    if not target.published:
        return f"{target.name} v{target.version} is not published"
    return ""


def _status(saga: SagaShape, source: VersionShape, target: VersionShape) -> str:
    if saga.status not in MOVABLE_STATUSES:
        return f"it is {saga.status}: only RUNNING or STUCK sagas move"
    return ""


def _in_flight(saga: SagaShape, source: VersionShape, target: VersionShape) -> str:
    if not saga.in_flight:
        return ""
    if saga.in_flight_lease_live:
        return (
            f"step {saga.in_flight} is running on a worker: a saga moves only between steps"
            " (try again once the step has finished)"
        )
    return (
        f"step {saga.in_flight} was running on a worker whose lease expired: wait for the"
        " sweeper to settle it"
    )


def _steps(saga: SagaShape, source: VersionShape, target: VersionShape) -> str:
    positions = {step.name: index for index, step in enumerate(target.steps)}
    for name in saga.ran:
        before, after = source.step(name), target.step(name)
        if after is None:
            return f"step {name} already ran but v{target.version} has no step {name}"
        if before is None:
            continue  # cannot happen for a run of the source; nothing to compare
        if after.action != before.action:
            return (
                f"step {name} already ran with action {before.action} but v{target.version}"
                f" runs {after.action}"
            )
        if after.compensation != before.compensation:
            return (
                f"step {name} already ran; its compensation is"
                f" {before.compensation or 'none'} but in v{target.version}"
                f" {after.compensation or 'none'}"
            )
        if after.kind != before.kind:
            return (
                f"step {name} already ran as {before.kind} but is {after.kind} in v{target.version}"
            )
    order = [positions[name] for name in saga.ran]
    if order != sorted(order):
        return f"v{target.version} runs the steps already run in another order"
    if order:
        ran = set(saga.ran)
        for step in target.steps[: max(order)]:
            if step.name not in ran:
                return (
                    f"step {step.name} of v{target.version} comes before steps already run"
                    f" ({', '.join(saga.ran)}) and would run out of order"
                )
    if saga.next_step and saga.next_step not in positions:
        return f"its next step {saga.next_step} does not exist in v{target.version}"
    return ""


class StepLike(Protocol):
    name: str
    action: str
    compensation: str
    kind: str


def shape_of_steps(steps: Sequence[StepLike]) -> tuple[StepShape, ...]:
    """Return the shapes of step rows (StepDefinition, or anything with the same four fields)."""
    return tuple(StepShape(s.name, s.action, s.compensation, str(s.kind)) for s in steps)
