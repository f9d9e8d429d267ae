"""Why sagas fail: one saga's cause for its page, and the stuck sagas grouped by cause.

A stuck saga carries its cause (failing step, error code, message, attempts), copied by the engine
from the failing run when it got stuck, so the lists show it without reading runs and the overview
groups by it from one partial index (saga_stuck_cause).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Max, Q
from django.urls import reverse

from bpm.dashboard.saga_filter import NONE
from bpm.models import (
    Direction,
    SagaDefinition,
    SagaInstance,
    SagaStatus,
    StepRun,
    StepStatus,
    StuckReason,
)

# The overview shows this many groups, the biggest first.
GROUPS_SHOWN = 20
_SETTLED_RUNS = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)


@dataclass(frozen=True)
class Cause:
    """What made a saga fail, as its page summarises it."""

    step: str
    direction: str
    code: str
    message: str
    attempts: int
    max_attempts: int | None


@dataclass(frozen=True)
class StuckGroup:
    """Stuck sagas of one version that failed the same way, and the newest of them."""

    definition: SagaDefinition
    step: str
    reason: str
    code: str
    count: int
    newest_at: datetime
    example: SagaInstance | None

    @property
    def reason_label(self) -> str:
        return str(StuckReason(self.reason).label) if self.reason in StuckReason else self.reason

    @property
    def message(self) -> str:
        """Return the newest example's error, or what is known of it without one."""
        if self.example is not None and self.example.stuck_error:
            return self.example.stuck_error
        return self.code or self.reason_label

    @property
    def filters(self) -> dict[str, Any]:
        """Return the saga list's query parameters that select exactly this group."""
        return {
            "status": SagaStatus.STUCK,
            "definition": self.definition.name,
            "version": self.definition.version,
            "step": self.step or NONE,
            "reason": self.reason,
            "error": self.code or NONE,
            "sort": "-updated",
        }

    @property
    def url(self) -> str:
        return f"{reverse('dashboard:sagas')}?{urlencode(self.filters)}"


def cause_of(saga: SagaInstance, runs: Iterable[StepRun]) -> Cause | None:
    """Return what made this saga fail, or None when nothing has failed.

    A stuck (or aborted) saga has its cause on its row. Otherwise the newest unsettled run with
    an error (a step being retried) is the cause; failing that, the refusal the saga compensates.
    """
    runs = list(runs)
    if saga.stuck_step:
        run = _newest(r for r in runs if r.step.name == saga.stuck_step)
        return Cause(
            step=saga.stuck_step,
            direction=saga.stuck_direction,
            code=saga.stuck_error_code,
            message=saga.stuck_error,
            attempts=saga.stuck_attempts,
            max_attempts=run.step.max_attempts if run else None,
        )
    run = _newest(r for r in runs if r.last_error and r.status not in _SETTLED_RUNS)
    if run is not None:
        return Cause(
            step=run.step.name,
            direction=run.direction,
            code=run.error_code,
            message=run.last_error,
            attempts=run.attempts,
            max_attempts=run.step.max_attempts,
        )
    if saga.failure:
        step = str(saga.failure.get("step", ""))
        refused = _newest(
            r for r in runs if r.step.name == step and r.direction == Direction.FORWARD
        )
        return Cause(
            step=step,
            direction=Direction.FORWARD,
            code=str(saga.failure.get("code", "")),
            message=str(saga.failure.get("message", "")),
            attempts=refused.attempts if refused else 0,
            max_attempts=refused.step.max_attempts if refused else None,
        )
    return None


def _newest(runs: Iterable[StepRun]) -> StepRun | None:
    return max(runs, key=lambda run: run.pk, default=None)


def stuck_groups(limit: int = GROUPS_SHOWN) -> list[StuckGroup]:
    """Return the biggest groups of stuck sagas by (version, step, reason, error code).

    Three queries whatever the number of stuck sagas: the groups (an index-only scan of
    saga_stuck_cause), their newest examples (one probe of that index per group) and the
    versions (a small table).
    """
    keys = ("definition", "stuck_step", "stuck_reason", "stuck_error_code")
    rows = list(
        SagaInstance.objects.filter(status=SagaStatus.STUCK)
        .values(*keys)
        .annotate(count=Count("pk"), newest_at=Max("updated_at"))
        .order_by("-count", "-newest_at", *keys)[:limit]
    )
    if not rows:
        return []
    examples = _examples(rows)
    versions = SagaDefinition.objects.in_bulk({row["definition"] for row in rows})
    return [
        StuckGroup(
            definition=versions[row["definition"]],
            step=row["stuck_step"],
            reason=row["stuck_reason"],
            code=row["stuck_error_code"],
            count=row["count"],
            newest_at=row["newest_at"],
            example=examples.get(_key(row)),
        )
        for row in rows
    ]


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row["definition"], row["stuck_step"], row["stuck_reason"], row["stuck_error_code"])


def _examples(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], SagaInstance]:
    """Return the newest stuck saga of each group (the highest id among ties on the time)."""
    match = reduce(
        or_,
        (
            Q(
                definition=row["definition"],
                stuck_step=row["stuck_step"],
                stuck_reason=row["stuck_reason"],
                stuck_error_code=row["stuck_error_code"],
                updated_at=row["newest_at"],
            )
            for row in rows
        ),
    )
    found: dict[tuple[Any, ...], SagaInstance] = {}
    for saga in SagaInstance.objects.filter(match, status=SagaStatus.STUCK).order_by("id"):
        found[(saga.definition_id, saga.stuck_step, saga.stuck_reason, saga.stuck_error_code)] = (
            saga
        )
    return found
