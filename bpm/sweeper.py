"""The periodic sweep: expire leases, ring again for lost doorbells, flag sagas that stall."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from bpm import clock, definitions, dispatch, engine
from bpm.models import (
    ACTIVE_STATUSES,
    EventType,
    SagaInstance,
    StepDefinition,
    StepRun,
    StepStatus,
    StuckReason,
)

log = logging.getLogger(__name__)

SWEEPER = "sweeper"
BATCH = 500


@dataclass
class SweepReport:
    leases_expired: int = 0
    redriven: int = 0
    timed_out: int = 0
    stalled: int = 0

    def __str__(self) -> str:
        return ", ".join(
            f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)
        )


def sweep_once() -> SweepReport:
    """Run every part of the sweep once."""
    return SweepReport(
        leases_expired=expire_leases(),
        redriven=redrive(),
        timed_out=flag_past_deadline(),
        stalled=flag_stalled(),
    )


def expire_leases() -> int:
    """Turn every expired lease into a failed attempt; the retry policy decides what follows."""
    expired = StepRun.objects.filter(
        status=StepStatus.RUNNING, lease_expires_at__lt=clock.now()
    ).values_list("id", flat=True)[:BATCH]
    return sum(engine.expire_lease(run_id, actor=SWEEPER) for run_id in expired)


def redrive() -> int:
    """Ring again for every due run whose doorbell is no longer in Redis."""
    cutoff = clock.now() - timedelta(seconds=settings.BPM_REDRIVE_GRACE)
    due = StepRun.objects.filter(
        status=StepStatus.PENDING, due_at__lte=cutoff, saga__status__in=ACTIVE_STATUSES
    ).order_by("due_at")[:BATCH]
    rung = 0
    for run in due:
        step = _step_of(run)
        if dispatch.has_live_job(run, step.queue):
            continue
        dispatch.ring_now(run.id, str(run.token), run.due_at, step.timeout, step.queue)
        _log_redrive(run)
        rung += 1
    return rung


def _step_of(run: StepRun) -> StepDefinition:
    saga_definition_id = SagaInstance.objects.values_list("definition_id", flat=True).get(
        pk=run.saga_id
    )
    return next(s for s in definitions.steps_of(saga_definition_id) if s.id == run.step_id)


def _log_redrive(run: StepRun) -> None:
    with transaction.atomic():
        saga = SagaInstance.objects.select_for_update().get(pk=run.saga_id)
        run.saga = saga
        run.log(EventType.REDRIVEN, SWEEPER, "no doorbell was waiting in Redis: rang again")
        saga.save(update_fields=["updated_at"])


def flag_past_deadline() -> int:
    """Mark STUCK (timed out) every active saga past its deadline."""
    overdue = SagaInstance.objects.filter(
        status__in=ACTIVE_STATUSES, deadline__lt=clock.now()
    ).values_list("id", flat=True)[:BATCH]
    message = "the saga passed its deadline"
    return sum(
        _flag(
            saga_id,
            StuckReason.TIMED_OUT,
            message,
            lambda saga: bool(saga.deadline and saga.deadline < clock.now()),
        )
        for saga_id in overdue
    )


def flag_stalled() -> int:
    """Mark STUCK (no progress) every active saga with no event for BPM_STALL_AFTER seconds."""
    cutoff = clock.now() - timedelta(seconds=settings.BPM_STALL_AFTER)
    stalled = SagaInstance.objects.filter(
        status__in=ACTIVE_STATUSES, updated_at__lt=cutoff
    ).values_list("id", flat=True)[:BATCH]
    message = f"no progress for {settings.BPM_STALL_AFTER:g}s: is a worker serving its queue?"
    return sum(
        _flag(saga_id, StuckReason.NO_PROGRESS, message, lambda saga: saga.updated_at < cutoff)
        for saga_id in stalled
    )


def _flag(
    saga_id: uuid.UUID, reason: str, message: str, applies: Callable[[SagaInstance], bool]
) -> bool:
    with transaction.atomic():
        saga = SagaInstance.objects.select_for_update().get(pk=saga_id)
        if not saga.is_active or not applies(saga):
            return False
        saga.get_stuck(actor=SWEEPER, reason=reason, message=message)
        for run in StepRun.objects.filter(saga=saga, status=StepStatus.PENDING):
            run.saga = saga
            run.cancel(actor=SWEEPER, reason=message)
            run.save()
        saga.save()
        return True
