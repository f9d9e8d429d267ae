"""Doorbells: RQ jobs that carry a StepRun id and its fence token, nothing else."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import django_rq
from django.conf import settings
from django.db import transaction
from rq.job import Job, JobStatus

from bpm import clock
from bpm.models import StepRun

log = logging.getLogger(__name__)

# SCHEDULED is not live here: the sweeper only asks about runs already overdue by the grace
# period, so a doorbell still waiting in the scheduled registry means no scheduler moved it (the
# worker holding the scheduler lock died) and it must be rung again.
LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED}
# RQ's own limit sits above the step's timeout: the lease is what enforces the step's timeout,
# the job limit only stops a horse that hangs for good (and leaves room for inline continuation).
JOB_TIMEOUT_MARGIN = 30


def job_id(run_id: int, token: str) -> str:
    """Return the RQ job id of the doorbell for this run and token."""
    return f"bpm-step-{run_id}-{token}"


def ring(run: StepRun, *, timeout: float, queue: str) -> None:
    """Enqueue the doorbell when the current transaction commits (now, or at the run's due time)."""
    args = (run.id, str(run.token), run.due_at, timeout, queue)
    transaction.on_commit(lambda: ring_now(*args), robust=True)


def ring_now(run_id: int, token: str, due_at: datetime, timeout: float, queue: str) -> None:
    """Enqueue the doorbell immediately; a delayed one goes through RQ's scheduler."""
    rq_queue = django_rq.get_queue(queue)
    options = {
        "job_id": job_id(run_id, token),
        "job_timeout": int(timeout + settings.BPM_INLINE_MAX_SECONDS + JOB_TIMEOUT_MARGIN),
        "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600,
    }
    delay = (due_at - clock.now()).total_seconds()
    if delay > 0:
        rq_queue.enqueue_in(timedelta(seconds=delay), "bpm.tasks.ring", run_id, token, **options)
    else:
        rq_queue.enqueue("bpm.tasks.ring", run_id, token, **options)


def has_live_job(run: StepRun, queue: str) -> bool:
    """Say whether Redis holds a doorbell for this run's current token that a worker will see."""
    connection = django_rq.get_connection(queue)
    try:
        job = Job.fetch(job_id(run.id, str(run.token)), connection=connection)
    except Exception:
        return False
    return job.get_status(refresh=False) in LIVE_STATUSES
