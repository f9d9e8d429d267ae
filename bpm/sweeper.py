"""The periodic sweep: expire leases, ring again for lost doorbells, flag sagas that stall."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bpm import alert_delivery, alerting, batches, clock, dispatch, engine, retention, totals
from bpm.models import SagaInstance, StepRun
from bpm.states import ACTIVE_STATUSES, PauseScope, StepStatus, StuckReason

log = logging.getLogger(__name__)

SWEEPER = "sweeper"
BATCH = 500
# How many batches of due runs one sweep looks through for dead doorbells. Live doorbells are
# skipped, not rung, so without paging a backlog of BATCH live ones would hide every lost
# doorbell behind it forever.
REDRIVE_PAGES = 20

# Where the last sweep stopped paging through due runs, as (due_at, id), when it hit
# REDRIVE_PAGES before the end; the next sweep carries on from there and wraps around, so every
# due run is looked at within ceil(due runs / (BATCH * REDRIVE_PAGES)) sweeps.
_redrive_cursor: tuple[datetime, int] | None = None


@dataclass
class SweepReport:
    leases_expired: int = 0
    waits_expired: int = 0
    redriven: int = 0
    timed_out: int = 0
    stalled: int = 0
    batches_redriven: int = 0

    def __str__(self) -> str:
        return ", ".join(
            f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)
        )


def sweep_once() -> SweepReport:
    """Run every part of the sweep once."""
    report = SweepReport(
        leases_expired=expire_leases(),
        waits_expired=expire_waits(),
        redriven=_redrive_unless_redis_is_down(),
        timed_out=flag_past_deadline(),
        stalled=flag_stalled(),
        batches_redriven=_redrive_batches_unless_redis_is_down(),
    )
    # The finished-saga totals the dashboard counts from (bpm/totals.py), a few queries.
    totals.roll_up()
    # Alert rules fire and resolve on what the flags above just found (bpm/alerting.py); notices
    # whose doorbell was lost are rung again.
    alerting.evaluate()
    alert_delivery.redrive()
    # Archive and delete old finished sagas (bpm/retention.py): long behind the rollup's watermark.
    retention.purge_due()
    return report


def _redrive_unless_redis_is_down() -> int:
    # Ringing needs Redis, flagging does not: an outage of Redis must not stop the deadlines.
    try:
        return redrive()
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("redrive skipped this sweep, Redis is unreachable: %s", exc)
        return 0


def _redrive_batches_unless_redis_is_down() -> int:
    # A batch repair whose worker died (bpm/batches.py) is rung again like a step.
    try:
        return batches.redrive_stalled()
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("batch redrive skipped this sweep, Redis is unreachable: %s", exc)
        return 0


def expire_leases() -> int:
    """Turn every expired lease into a failed attempt; the retry policy decides what follows."""
    expired = StepRun.objects.filter(
        status=StepStatus.RUNNING, lease_expires_at__lt=clock.now()
    ).values_list("id", flat=True)[:BATCH]
    return sum(engine.expire_lease(run_id, actor=SWEEPER) for run_id in expired)


def expire_waits() -> int:
    """Fail every wait (signal, task token, human task) past its timeout; the plan follows."""
    expired = StepRun.objects.filter(status=StepStatus.WAITING, due_at__lt=clock.now()).values_list(
        "id", flat=True
    )[:BATCH]
    return sum(engine.expire_wait(run_id, actor=SWEEPER) for run_id in expired)


def redrive() -> int:
    """Ring again, under a new fence token, for every due run whose doorbell is not live.

    A doorbell is dead when Redis lost it, when no scheduler moved it out of the scheduled
    registry, or when the worker that dequeued it died before the step committed (see
    `dispatch.live_doorbells`). The new token makes any late copy of the old doorbell stale, so
    a wrong guess costs one refused job, never a second claim.
    """
    global _redrive_cursor
    cutoff = clock.now() - timedelta(seconds=settings.BPM_REDRIVE_GRACE)
    after, wrapped, rung = _redrive_cursor, _redrive_cursor is None, 0
    for _ in range(REDRIVE_PAGES):
        due = _due_runs(cutoff, after)
        live = dispatch.live_doorbells([(run, run.step.queue) for run in due])
        rung += engine.redrive(
            [run for run in due if run.id not in live],
            actor=SWEEPER,
            message="no live doorbell held this due step: rang again",
        )
        if len(due) == BATCH:
            after = (due[-1].due_at, due[-1].id)
        elif wrapped:
            _redrive_cursor = None
            return rung
        else:
            # The end, having started midway: look at the runs before where the last sweep began.
            after, wrapped = None, True
    _redrive_cursor = after
    return rung


def _due_runs(cutoff: datetime, after: tuple[datetime, int] | None) -> list[StepRun]:
    """Return a batch of due runs of active sagas, in (due_at, id) order, after `after`."""
    due = StepRun.objects.filter(
        status=StepStatus.PENDING,
        due_at__lte=cutoff,
        saga__status__in=ACTIVE_STATUSES,
        # A paused saga's due runs wait for its resume, which rings them (bpm.engine.unpause).
        saga__paused=PauseScope.NONE,
    )
    if after is not None:
        due = due.filter(Q(due_at__gt=after[0]) | Q(due_at=after[0], id__gt=after[1]))
    return list(due.select_related("step").order_by("due_at", "id")[:BATCH])


def flag_past_deadline() -> int:
    """Mark STUCK (timed out) every active saga past its deadline."""
    return _flag(
        overdue_sagas(),
        StuckReason.TIMED_OUT,
        "the saga passed its deadline",
        lambda saga: bool(saga.deadline and saga.deadline < clock.now()),
    )


def overdue_sagas() -> list[uuid.UUID]:
    """Return the ids of active sagas past their deadline (a batch of them)."""
    return list(
        SagaInstance.objects.filter(
            status__in=ACTIVE_STATUSES, deadline__lt=clock.now(), paused=PauseScope.NONE
        ).values_list("id", flat=True)[:BATCH]
    )


def flag_timed_out(saga_id: uuid.UUID) -> bool:
    """Mark this saga STUCK (timed out) if, under its lock, it is still active and overdue."""
    return (
        _flag(
            [saga_id],
            StuckReason.TIMED_OUT,
            "the saga passed its deadline",
            lambda saga: bool(saga.deadline and saga.deadline < clock.now()),
        )
        == 1
    )


def flag_stalled() -> int:
    """Mark STUCK (no progress) every active saga with no event for BPM_STALL_AFTER seconds."""
    cutoff = clock.now() - timedelta(seconds=settings.BPM_STALL_AFTER)
    # A saga that waits for a signal, a token or a person is quiet, not stalled: its wait's own
    # timeout ends it. A paused saga makes no progress on purpose: it is not flagged for it.
    waiting = StepRun.objects.filter(saga=OuterRef("pk"), status=StepStatus.WAITING)
    stalled = (
        SagaInstance.objects.filter(
            status__in=ACTIVE_STATUSES, updated_at__lt=cutoff, paused=PauseScope.NONE
        )
        .exclude(Exists(waiting))
        .values_list("id", flat=True)[:BATCH]
    )
    message = f"no progress for {settings.BPM_STALL_AFTER:g}s: is a worker serving its queue?"
    return _flag(
        list(stalled), StuckReason.NO_PROGRESS, message, lambda saga: saga.updated_at < cutoff
    )


def _flag(
    saga_ids: list[uuid.UUID],
    reason: str,
    message: str,
    applies: Callable[[SagaInstance], bool],
) -> int:
    if not saga_ids:
        return 0
    return engine.flag(saga_ids, reason=reason, message=message, applies=applies, actor=SWEEPER)
