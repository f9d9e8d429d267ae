"""Bounded data: finished sagas past BPM_RETAIN_DAYS are archived, then deleted, in small batches.

The sweeper calls `purge_due()` on every sweep; it does a pass at most every PASS_INTERVAL
seconds (sooner while a backlog remains). A pass also drops what is only kept for a while anyway:
expired Idempotency-Key records, expired sessions, and RQ's expired finished and failed jobs.

Deleting never holds up a worker. A batch is found with the partial index `saga_finished_at`
(finished sagas only, by finish time), so no active saga is ever read; it is written to its
archive file first, then deleted in one short transaction of its own that skips any saga row
somebody holds locked, re-checks that each saga is finished and old enough, and touches no
other saga's rows. Deletion is not a state change: the engine still owns every transition.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from importlib import import_module
from pathlib import Path

import django_rq
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError
from rq.registry import clean_registries
from rq.utils import current_timestamp

from bpm import archive, clock
from bpm.api.models import IdempotencyRecord
from bpm.models import FINISHED_STATUSES, Barrier, SagaEvent, SagaInstance, Signal, StepRun, Wait
from bpm.private_dir import make_private

log = logging.getLogger(__name__)

# Seconds between two passes while nothing is left over.
PASS_INTERVAL = 60.0
# Batches one pass may take, so one sweep never runs long; a backlog continues next sweep.
PASS_BATCHES = 10

# The tables whose rows belong to a saga, in the order they are deleted. A finished saga's waits
# and signals are spent (a consumed signal's payload is its step's output, in the archive); they
# are not archived.
OWNED: tuple[type[SagaEvent | Barrier | Wait | Signal | StepRun], ...] = (
    SagaEvent,
    Barrier,
    Wait,
    Signal,
    StepRun,
)

_last_pass: datetime | None = None


@dataclass
class RetentionReport:
    sagas_archived: int = 0
    sagas_deleted: int = 0
    idempotency_records: int = 0
    sessions: int = 0
    rq_jobs: int = 0
    backlog: bool = False

    def __str__(self) -> str:
        return ", ".join(
            f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}"
            for f in fields(self)
            if f.name != "backlog"
        )


def purge_due() -> RetentionReport | None:
    """Run a retention pass if one is due; return its report, or None when none was due."""
    global _last_pass
    now = clock.now()
    if _last_pass is not None and now - _last_pass < timedelta(seconds=PASS_INTERVAL):
        return None
    try:
        report = purge(now=now)
    except Exception:
        # Whatever stops retention (a full disk, an unwritable archive directory, the database
        # away) must not stop the sweep's own work that follows; try again in a minute.
        log.exception("retention pass failed; next try in %gs", PASS_INTERVAL)
        _last_pass = now
        return None
    # A backlog is worked off on the next sweep rather than a minute later.
    _last_pass = None if report.backlog else now
    if any(vars(report).values()):
        log.info("retention: %s", report)
    return report


def forget_last_pass() -> None:
    """Make the next `purge_due()` run a pass (tests; a new process starts this way)."""
    global _last_pass
    _last_pass = None


def purge(*, now: datetime, batches: int = PASS_BATCHES) -> RetentionReport:
    """Archive and delete up to `batches` batches of old finished sagas and purge the rest."""
    report = RetentionReport()
    if settings.BPM_RETAIN_DAYS:
        cutoff = now - timedelta(days=settings.BPM_RETAIN_DAYS)
        for _ in range(batches):
            archived, deleted = archive_and_delete(cutoff, directory=archive_directory())
            report.sagas_archived += archived
            report.sagas_deleted += deleted
            if archived < settings.BPM_RETAIN_BATCH:
                break
        else:
            report.backlog = True
    report.idempotency_records = purge_idempotency_records(now=now)
    report.sessions = purge_sessions()
    report.rq_jobs = purge_rq_jobs()
    return report


def archive_directory() -> Path:
    """Return the private directory that holds the sweeper's archives."""
    directory = Path(settings.BPM_ARCHIVE_DIR)
    make_private(directory)
    return directory


def finished_before(cutoff: datetime, *, limit: int) -> list[uuid.UUID]:
    """Return the ids of up to `limit` sagas finished before `cutoff`, oldest first."""
    return list(
        SagaInstance.objects.filter(status__in=FINISHED_STATUSES, finished_at__lt=cutoff)
        .order_by("finished_at")
        .values_list("id", flat=True)[:limit]
    )


def archive_and_delete(cutoff: datetime, *, directory: Path) -> tuple[int, int]:
    """Archive one batch of sagas finished before `cutoff` to a new file, then delete them."""
    batch = finished_before(cutoff, limit=settings.BPM_RETAIN_BATCH)
    if not batch:
        return 0, 0
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"sagas-{stamp}-{batch[0]}.jsonl.gz"
    archived = archive.write(path, batch)
    return archived, delete(batch, cutoff=cutoff)


def delete(saga_ids: list[uuid.UUID], *, cutoff: datetime) -> int:
    """Delete these sagas and every row they own, in one short transaction; return how many.

    Only sagas still finished before `cutoff` go, and none that another transaction holds
    locked (it is left for a later batch, never waited for).
    """
    with transaction.atomic():
        doomed = list(
            SagaInstance.objects.select_for_update(skip_locked=True)
            .filter(pk__in=saga_ids, status__in=FINISHED_STATUSES, finished_at__lt=cutoff)
            .values_list("id", flat=True)
        )
        if not doomed:
            return 0
        # One statement a table, children first (events point at runs; everything at sagas),
        # with no rows fetched: Django's cascade would load every saga and run of the batch.
        # OWNED lists every table that points at a saga; a test keeps it complete.
        for model in OWNED:
            model.objects.filter(saga_id__in=doomed)._raw_delete(model.objects.db)
        return int(SagaInstance.objects.filter(pk__in=doomed)._raw_delete(SagaInstance.objects.db))


def purge_idempotency_records(*, now: datetime) -> int:
    """Delete expired Idempotency-Key records, a batch at a time; return how many."""
    deleted = 0
    for _ in range(PASS_BATCHES):
        expired = list(
            IdempotencyRecord.objects.filter(expires_at__lte=now).values_list("id", flat=True)[
                : settings.BPM_RETAIN_BATCH
            ]
        )
        if not expired:
            break
        count, _ = IdempotencyRecord.objects.filter(id__in=expired, expires_at__lte=now).delete()
        deleted += count
    return deleted


def purge_sessions() -> int:
    """Delete expired sessions, as `manage.py clearsessions` does; return how many (if known)."""
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        from django.contrib.sessions.models import Session

        count, _ = Session.objects.filter(expire_date__lt=clock.now()).delete()
        return int(count)
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return 0


def purge_rq_jobs() -> int:
    """Drop expired entries of RQ's finished and failed registries; return how many.

    A doorbell's job keeps its result for minutes and its failure for a week (bpm/dispatch.py);
    the job itself expires in Redis, and this removes what RQ's registries still list of it
    even when no worker runs its own maintenance. Redis being away skips it.
    """
    removed = 0
    for name in settings.BPM_QUEUES:
        queue = django_rq.get_queue(name)
        try:
            now = current_timestamp()
            for registry in (queue.finished_job_registry, queue.failed_job_registry):
                removed += int(queue.connection.zcount(registry.key, 0, now))
            clean_registries(queue)
        except RedisError as exc:
            log.warning("RQ's registries not cleaned this pass, Redis is unreachable: %s", exc)
            break
    return removed
