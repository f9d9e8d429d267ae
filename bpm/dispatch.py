"""Doorbells: RQ jobs that carry a StepRun id and its fence token, nothing else.

Everything the engine knows about RQ is here (enqueueing, the liveness of jobs and workers, the
current worker's name, which jobs are the engine's own, whether this worker was asked to stop);
bpm/worker.py is the worker class `rqworker` runs, and bpm/tasks.py is the job function, which
takes ids and calls the engine.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from redis import Redis
from redis.client import Pipeline
from rq import get_current_job
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.utils import as_text, utcparse
from rq.worker import Worker

from bpm import clock, redis_connection
from bpm.models import StepRun

log = logging.getLogger(__name__)

# RQ's own limit sits above the step's timeout: the lease is what enforces the step's timeout,
# the job limit only stops a job that hangs for good (and leaves room for inline continuation).
JOB_TIMEOUT_MARGIN = 30
# The job every doorbell runs, by dotted path (bpm.tasks keeps the older name `ring` working for
# doorbells enqueued before an upgrade).
JOB_FUNCTION = "bpm.tasks.answer_doorbell"
# The job of an alert notice's doorbell (bpm/alert_delivery.py).
ALERT_JOB_FUNCTION = "bpm.tasks.answer_alert_doorbell"


def job_limit(step_timeout: float) -> int:
    """Return the RQ time limit of a doorbell for a step with this timeout."""
    return int(step_timeout + settings.BPM_INLINE_MAX_SECONDS + JOB_TIMEOUT_MARGIN)


def worker_actor() -> str:
    """Return the actor string of this worker process."""
    job = get_current_job()
    name = job.worker_name if job is not None and job.worker_name else None
    return f"worker:{name or f'{socket.gethostname()}:{os.getpid()}'}"


# A doorbell's job id names its run and token, so a worker that takes one straight from its queue
# (take_doorbell) needs nothing else from Redis.
DOORBELL_PREFIX = "bpm-step-"


def job_id(run_id: int, token: str) -> str:
    """Return the RQ job id of the doorbell for this run and token."""
    return f"{DOORBELL_PREFIX}{run_id}-{token}"


def parse_job_id(jid: str) -> tuple[int, str] | None:
    """Return the run id and token a doorbell's job id names, or None for any other job."""
    if not jid.startswith(DOORBELL_PREFIX):
        return None
    run_id, _, token = jid.removeprefix(DOORBELL_PREFIX).partition("-")
    if not run_id.isdigit() or not token:
        return None
    return int(run_id), token


@dataclass(frozen=True)
class Doorbell:
    """The job that tells a worker to claim this run under this token (at or after `due_at`)."""

    run_id: int
    token: str
    due_at: datetime
    timeout: float
    queue: str


def ring(run: StepRun, *, timeout: float, queue: str) -> None:
    """Enqueue the doorbell when the current transaction commits (now, or at the run's due time).

    Every doorbell of one transaction goes out in one Redis pipeline, after the commit. The
    run's id is read then: a run inserted with the step's other writes gets it when they are
    sent (bpm.engine), after this call.
    """
    token, due_at = str(run.token), run.due_at

    def doorbell() -> Doorbell:
        assert run.id is not None, "a doorbell rang for a run that was never inserted"
        return Doorbell(run.id, token, due_at, timeout, queue)

    connection = transaction.get_connection()
    # The batch is found among the transaction's own on-commit callbacks, so a rollback (which
    # discards them) discards it too.
    for _, callback, _ in connection.run_on_commit:
        batch = getattr(callback, "__self__", None)
        if isinstance(batch, _Batch):
            batch.doorbells.append(doorbell)
            return
    transaction.on_commit(_Batch([doorbell]).ring, robust=True)


@dataclass
class _Batch:
    doorbells: list[Callable[[], Doorbell]]

    def ring(self) -> None:
        ring_all([doorbell() for doorbell in self.doorbells])


def ring_now(run_id: int, token: str, due_at: datetime, timeout: float, queue: str) -> None:
    """Enqueue one doorbell immediately; a delayed one goes through the scheduled registry."""
    ring_all([Doorbell(run_id, token, due_at, timeout, queue)])


def ring_all(doorbells: Sequence[Doorbell]) -> None:
    """Enqueue these doorbells now, in one pipeline per Redis connection."""
    pipes: dict[int, Pipeline] = {}
    seen: set[str] = set()
    for doorbell in doorbells:
        jid = job_id(doorbell.run_id, doorbell.token)
        if jid in seen:
            continue
        seen.add(jid)
        rq_queue = redis_connection.queue(doorbell.queue)
        pipe = pipes.get(id(rq_queue.connection))
        if pipe is None:
            pipe = pipes[id(rq_queue.connection)] = rq_queue.connection.pipeline()
        _enqueue(rq_queue, doorbell, jid, pipe)
    for pipe in pipes.values():
        pipe.execute()


def _enqueue(rq_queue: Queue, doorbell: Doorbell, jid: str, pipe: Pipeline) -> None:
    data = Queue.prepare_data(
        JOB_FUNCTION,
        args=(doorbell.run_id, doorbell.token),
        job_id=jid,
        timeout=job_limit(doorbell.timeout),
        result_ttl=600,
        failure_ttl=7 * 24 * 3600,
    )
    delay = (doorbell.due_at - clock.now()).total_seconds()
    if delay <= 0:
        rq_queue.enqueue_many([data], pipeline=pipe)
        return
    job = rq_queue.create_job(
        data.func,
        args=data.args,
        job_id=jid,
        timeout=data.timeout,
        result_ttl=data.result_ttl,
        failure_ttl=data.failure_ttl,
        status=JobStatus.SCHEDULED,
    )
    rq_queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=delay), pipeline=pipe)


# --- answering the next doorbells of a queue in the same job ------------------------------------


@dataclass(frozen=True)
class CurrentJob:
    """The RQ job this process is running: the queue it came from and its time limit."""

    queue: str
    timeout: float


def current_job() -> CurrentJob | None:
    """Return the doorbell job this process runs, or None outside an RQ job."""
    job = get_current_job()
    if job is None or not job.origin:
        return None
    return CurrentJob(job.origin, float(job.timeout or 0))


# Pop the queue's head if it is a doorbell whose job limit fits in what the current job has left,
# and delete its job (it is answered by the current one); anything else goes back to the head.
# One round trip, atomic: no other worker sees the job half taken.
_TAKE_SCRIPT = """
local jid = redis.call('LPOP', KEYS[1])
if not jid then
  return false
end
if string.sub(jid, 1, string.len(ARGV[1])) ~= ARGV[1] then
  redis.call('LPUSH', KEYS[1], jid)
  return false
end
local key = ARGV[2] .. jid
local limit = tonumber(redis.call('HGET', key, 'timeout') or '0') or 0
if limit > tonumber(ARGV[3]) then
  redis.call('LPUSH', KEYS[1], jid)
  return false
end
redis.call('DEL', key)
return jid
"""
_take_scripts: dict[int, Any] = {}


def take_doorbell(queue: str, *, max_timeout: float) -> tuple[int, str] | None:
    """Take the doorbell at the head of `queue` for the current job to answer; return its ids.

    Inline continuation across sagas: a job that has answered its own doorbell answers the next
    ones waiting in its queue, saving each an RQ job's bookkeeping. The doorbell is taken only if
    its own job limit (`max_timeout` is what the current job has left) would not be exceeded;
    a job that is not a doorbell (a batch, an alert, anything enqueued by others) stays at the
    head for RQ to run. A worker that dies after taking one loses it like any lost doorbell: the
    run stays PENDING and the sweeper rings it again.
    """
    rq_queue = redis_connection.queue(queue)
    connection = rq_queue.connection
    script = _take_scripts.get(id(connection))
    if script is None:
        script = _take_scripts[id(connection)] = connection.register_script(_TAKE_SCRIPT)
    taken = script(
        keys=[rq_queue.key],
        args=[DOORBELL_PREFIX, Job.redis_job_namespace_prefix, max_timeout],
        client=connection,
    )
    return parse_job_id(as_text(taken)) if taken else None


def has_live_job(run: StepRun, queue: str) -> bool:
    """Say whether a live worker will run the doorbell for this run's current token."""
    return run.id in live_doorbells([(run, queue)])


def live_doorbells(runs: Sequence[tuple[StepRun, str]]) -> set[int]:
    """Return the ids of the runs whose doorbell (for their current token) is live.

    A doorbell is live when it waits in its queue's list (a worker will pop it), or when it is
    STARTED by a worker that is registered, heartbeats (its last heartbeat is at most
    BPM_REDRIVE_GRACE seconds old) and holds it in the queue's started registry. Anything else
    (no job, still in the scheduled registry past its due time, in RQ's intermediate list after
    its worker died, STARTED by a dead worker, finished, failed) is not live: the sweeper asks only
    about runs overdue by the grace period, so such a doorbell will never claim the run.
    Two pipelined round trips per queue, however many runs.
    """
    by_queue: dict[str, list[StepRun]] = defaultdict(list)
    for run, queue in runs:
        by_queue[queue].append(run)
    live: set[int] = set()
    for queue, queued_runs in by_queue.items():
        live |= _live_on_queue(redis_connection.queue(queue), queued_runs)
    return live


def _live_on_queue(queue: Queue, runs: list[StepRun]) -> set[int]:
    connection = queue.connection
    ids = {run.id: job_id(run.id, str(run.token)) for run in runs}
    with connection.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(queue.started_job_registry.key, time.time(), "+inf")
        for jid in ids.values():
            pipe.hmget(Job.key_for(jid), "status", "worker_name")
            pipe.lpos(queue.key, jid)
        replies = pipe.execute()
    started = {StartedJobRegistry.parse_job_id(entry) for entry in replies[0]}
    jobs = {
        run_id: (_text(status), _text(worker), position is not None)
        for run_id, (status, worker), position in zip(
            ids, replies[1::2], replies[2::2], strict=True
        )
    }
    holders = {
        worker for status, worker, _ in jobs.values() if status == JobStatus.STARTED and worker
    }
    alive = _alive_workers(connection, holders)
    live = set()
    for run_id, (status, worker, in_queue) in jobs.items():
        if status is None:
            continue  # no job at all: lost, flushed, or expired
        if in_queue or (status == JobStatus.STARTED and worker in alive and ids[run_id] in started):
            live.add(run_id)
    return live


def _text(value: bytes | str | None) -> str | None:
    return None if value is None else as_text(value)


def _alive_workers(connection: Redis, names: set[str]) -> set[str]:
    """Return which of these RQ workers are registered and sent a heartbeat recently."""
    names_list = sorted(names)
    if not names_list:
        return set()
    with connection.pipeline(transaction=False) as pipe:
        for name in names_list:
            key = Worker.redis_worker_namespace_prefix + name
            pipe.sismember(Worker.redis_workers_keys, key)
            pipe.hget(key, "last_heartbeat")
        replies = pipe.execute()
    fresh_after = datetime.now(UTC) - timedelta(seconds=settings.BPM_REDRIVE_GRACE)
    alive = set()
    for name, registered, heartbeat in zip(names_list, replies[0::2], replies[1::2], strict=True):
        if registered and heartbeat and utcparse(as_text(heartbeat)) >= fresh_after:
            alive.add(name)
    return alive


# --- a batch repair's doorbell (bpm/batches.py) ------------------------------------------------

BATCH_JOB_FUNCTION = "bpm.tasks.work_batch"
# A batch's job gives up its worker after this long and rings again, so one batch of 10,000
# sagas never holds a worker for an hour, nor outlives RQ's job timeout.
BATCH_JOB_TIMEOUT = 600


def ring_batch(batch_id: int) -> None:
    """Enqueue a doorbell for this batch repair when the current transaction commits."""
    transaction.on_commit(lambda: ring_batch_now(batch_id), robust=True)


def ring_batch_now(batch_id: int) -> None:
    """Enqueue a doorbell for this batch repair now, at the front of the first of BPM_QUEUES.

    At the front: a batch of retries rings a step for each saga it retried, and its own next
    doorbell must not wait behind thousands of them.
    """
    rq_queue = redis_connection.queue(settings.BPM_QUEUES[0])
    rq_queue.enqueue(
        BATCH_JOB_FUNCTION,
        batch_id,
        at_front=True,
        job_id=f"bpm-batch-{batch_id}-{uuid.uuid4().hex[:12]}",
        job_timeout=BATCH_JOB_TIMEOUT,
        result_ttl=600,
        failure_ttl=7 * 24 * 3600,
    )


# --- the engine's own jobs, run inside the worker's process (bpm/worker.py) ---------------------

# Every job the engine enqueues. They carry ids only and the database is the truth: a step has
# its own timeout (bpm/timeout.py) and lease, and a worker that dies mid-job leaves a transaction
# that rolls back and a run the sweeper takes back, so nothing is gained by isolating them in a
# forked work horse. bpm's worker runs them in its own process, on the database connection it
# keeps across jobs; any other job (an application's own, enqueued on the same queues) still
# runs in a work horse, as RQ runs it.
ENGINE_JOB_FUNCTIONS = frozenset(
    {
        JOB_FUNCTION,
        "bpm.tasks.ring",  # the doorbell's former name, still carried by older doorbells
        ALERT_JOB_FUNCTION,
        BATCH_JOB_FUNCTION,
    }
)


def is_engine_job(job: Job) -> bool:
    """Say whether this RQ job is one of the engine's own (a worker runs it without forking)."""
    return job.func_name in ENGINE_JOB_FUNCTIONS


_stop_requested = threading.Event()


def stopping() -> bool:
    """Say whether this worker process was asked to stop (SIGTERM or SIGINT).

    A job that runs in the worker's own process checks it before continuing inline: the step in
    hand finishes and commits, and the next one is rung for another worker instead.
    """
    return _stop_requested.is_set()


def note_stop_requested() -> None:
    """Record that this worker process was asked to stop (called by bpm.worker.Worker)."""
    _stop_requested.set()
