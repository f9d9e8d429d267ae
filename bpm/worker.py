"""The RQ worker for doorbells: it promotes due delayed jobs itself and keeps connections healthy.

RQ moves a delayed job (`enqueue_in`) from the scheduled registry to its queue only in the one
process that holds the scheduler lock; when that process dies, the others take the lock over only
at their next maintenance pass, so retries that fall due meanwhile wait. Here every worker
promotes the due jobs of its own queues once a second while idle and between jobs. No lock is
needed: for each job, ZREM answers 1 to exactly one of the workers racing for it, and only that
one enqueues it. RQ's scheduler is therefore not started, even with `--with-scheduler` (it would
be a second promoter that can push a job twice).

It also outlives Redis going away (a restart, or a Sentinel failover to another master). RQ's
worker quits on a connection error anywhere but in its wait for a job: a heartbeat while a job
runs, the bookkeeping after it, the suspension check. Here those are skipped with a warning and
the worker goes back to its wait, where RQ reconnects with a back-off (1, 2, 4 ... 60 s). Nothing
is lost that the database does not know: a doorbell whose bookkeeping failed is not live, and
the sweeper rings it again under a new token.

It runs the engine's own jobs (`dispatch.ENGINE_JOB_FUNCTIONS`: doorbells, alert doorbells,
batch repairs) in its own process, as RQ's SimpleWorker does, instead of forking a work horse for
each: a horse paid a fork, a new database connection and a cold server-side cache for every job,
about a third of a short saga's latency. Those jobs carry ids only and the database is the
truth, so the isolation bought nothing: a worker killed mid-step leaves a transaction that rolls
back and a run the sweeper takes back by its lease, exactly as when a horse died. Any other job
(an application's own, on the same queues) still runs in a forked horse.

In-process, the worker
- keeps its database connection from job to job, whatever DATABASE_CONN_MAX_AGE says (that
  setting is for web requests); before each job a connection that broke (a terminated backend,
  a failover) or was left in a transaction is closed, and the job opens a fresh one;
- heartbeats from a thread every BPM_WORKER_POLL_INTERVAL while the job runs (RQ's SimpleWorker
  does not), so a long step's worker stays alive to `dispatch.live_doorbells` and /readyz; if the
  job outlives its RQ timeout by a minute (stuck in C code, where no alarm reaches it), the
  thread kills the worker, as RQ kills such a horse, and the sweeper recovers the step;
- on a first SIGTERM/SIGINT (warm shutdown) lets the step in hand finish and commit, continues no
  further inline (`dispatch.stopping()`; the next step is rung for another worker) and exits; a
  second one (cold shutdown) raises SystemExit in the step, whose transaction rolls back;
- stops a job that hangs in Python with RQ's own job timeout (SIGALRM, which bpm/timeout.py's
  per-step alarm nests inside).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, cast

import redis
from django.conf import settings
from django.db import close_old_connections, connections
from redis.client import Pipeline
from rq import worker_registration
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.utils import as_text, current_timestamp
from rq.worker import Worker as RQWorker
from rq.worker import WorkerStatus

from bpm import dispatch, log_context

log = logging.getLogger(__name__)

PROMOTE_BATCH = 100
# What a Redis that is down, restarting or failing over raises (MasterNotFoundError, and READONLY
# from a demoted master, arrive as ConnectionError).
REDIS_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# RQ kills a horse that runs this long past its job timeout (its alarm could not stop it); an
# in-process job gets the same bound from the heartbeat thread.
HUNG_JOB_MARGIN = 60


def promote_due_jobs(queue: Queue, *, limit: int = PROMOTE_BATCH) -> int:
    """Move the jobs of `queue` whose scheduled time has come onto the queue; return how many.

    Safe to call from any number of processes at once: a job goes to the one whose ZREM removed
    it. A process that dies between its ZREM and the enqueue loses that job; for a doorbell that
    is a lost doorbell, which the sweeper rings again.
    """
    connection = queue.connection
    registry_key = queue.scheduled_job_registry.key
    found = connection.zrangebyscore(registry_key, 0, current_timestamp(), start=0, num=limit)
    due = [as_text(cast(bytes, job_id)) for job_id in found]
    if not due:
        return 0
    with connection.pipeline(transaction=False) as pipe:
        for job_id in due:
            pipe.zrem(registry_key, job_id)
        removed = pipe.execute()
    won = [job_id for job_id, count in zip(due, removed, strict=True) if count]
    jobs = [
        job
        for job in queue.job_class.fetch_many(
            won, connection=connection, serializer=queue.serializer
        )
        if job is not None
    ]
    with connection.pipeline() as pipe:
        for job in jobs:
            if not job.has_rate_limit:
                queue._enqueue_job(job, pipeline=pipe, at_front=job.should_enqueue_at_front())
        pipe.execute()
    for job in jobs:
        if job.has_rate_limit:
            queue.enqueue_job(job, at_front=job.should_enqueue_at_front())
    return len(jobs)


class Worker(RQWorker):
    """RQ's worker that runs the engine's jobs in its own process and forks for any other.

    It also promotes due delayed jobs and heartbeats every poll interval (module docstring).
    """

    # The heartbeat thread of the engine job running in this process, if one runs.
    _beating: _Heartbeat | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A short monitoring interval makes a busy worker heartbeat every poll interval, so the
        # sweeper can tell a dead worker from a busy one well within BPM_REDRIVE_GRACE.
        kwargs.setdefault("job_monitoring_interval", settings.BPM_WORKER_POLL_INTERVAL)
        super().__init__(*args, **kwargs)
        # Every line of this process (RQ's own included) and of its work horses names the worker.
        log_context.bind_process(worker=self.name)

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        self.log.info(
            "Worker %s: promoting due delayed jobs itself every %ss; RQ's scheduler not started",
            self.name,
            settings.BPM_WORKER_POLL_INTERVAL,
        )

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Wait for a job in slices of the poll interval, promoting due delayed jobs each time."""
        if timeout is None:  # burst mode: a single look
            self.promote_due_jobs()
            return super().dequeue_job_and_maintain_ttl(None, max_idle_time)
        poll = settings.BPM_WORKER_POLL_INTERVAL
        idle_since = time.monotonic()
        while True:
            self.promote_due_jobs()
            # RQ's loop returns None once idle for `max_idle_time`: one slice, then promote again.
            result = super().dequeue_job_and_maintain_ttl(poll, max_idle_time=poll)
            if result is not None or self._stop_requested:
                return result
            if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                return None

    def promote_due_jobs(self) -> int:
        """Promote the due delayed jobs of every queue this worker serves; return how many."""
        promoted = 0
        for queue in self.queues:
            try:
                promoted += promote_due_jobs(queue)
            except redis.exceptions.RedisError as exc:
                # Redis is away: RQ's dequeue loop waits for it to come back.
                self.log.warning("Worker %s: could not promote due jobs: %s", self.name, exc)
                break
        return promoted

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run an engine job here and any other in a horse; a Redis lost meanwhile costs the
        job's bookkeeping, not the worker.

        The job has ended when this returns or raises (a horse has exited: a failed heartbeat no
        longer ends the wait for it), so the next job never runs beside it.
        """
        try:
            if dispatch.is_engine_job(job):
                self.execute_in_process(job, queue)
            else:
                super().execute_job(job, queue)
        except REDIS_UNREACHABLE as exc:
            self.log.warning(
                "Worker %s: Redis unreachable around job %s (%s); the sweeper re-rings its step "
                "if the database says it did not finish",
                self.name,
                job.id,
                exc,
            )

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_UNREACHABLE as exc:
            # The horse runs on; the next heartbeat, a poll interval later, tries again.
            self.log.warning(
                "Worker %s: heartbeat skipped, Redis is unreachable: %s", self.name, exc
            )

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        if pipeline is not None:  # queued in the caller's pipeline, which handles the error
            super().heartbeat(timeout, pipeline)
            return
        try:
            super().heartbeat(timeout)
            self.register_again_if_forgotten()
        except REDIS_UNREACHABLE as exc:
            self.log.warning(
                "Worker %s: heartbeat skipped, Redis is unreachable: %s", self.name, exc
            )

    def register_again_if_forgotten(self) -> bool:
        """Put this worker back in RQ's registry if Redis lost it; return whether it did.

        A Redis restarted empty, or a replica promoted before it had the registration, forgets
        the worker, while RQ only ever registers at start: the worker would run on unseen by
        Worker.all() (the dashboard, readiness, the sweeper's liveness check of its jobs).
        """
        if self.connection.sismember(self.redis_workers_keys, self.key):
            return False
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()
        self.log.warning(
            "Worker %s: Redis had lost this worker's registration; registered again", self.name
        )
        return True

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline)
            return
        try:
            super().set_state(state)
        except REDIS_UNREACHABLE as exc:
            self.log.warning("Worker %s: state %s not recorded: %s", self.name, state, exc)

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except REDIS_UNREACHABLE as exc:
            # The wait for a job that follows retries the connection with a back-off.
            self.log.warning("Worker %s: suspension not checked: %s", self.name, exc)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except REDIS_UNREACHABLE as exc:
            self.log.warning("Worker %s: maintenance skipped: %s", self.name, exc)

    # --- the engine's jobs, in this process ---------------------------------------------------

    def execute_in_process(self, job: Job, queue: Queue) -> None:
        """Run an engine job here, as RQ's SimpleWorker does, heart-beating while it runs."""
        execution = self.prepare_execution(job)
        try:
            with self._heartbeats(job, execution):
                self.perform_job(job, queue, execution)
        finally:  # also when Redis went away during the job's bookkeeping
            self.set_state(WorkerStatus.IDLE)

    @contextmanager
    def _heartbeats(self, job: Job, execution: Execution) -> Iterator[None]:
        """Heartbeat from a thread every poll interval until the job has run.

        The thread stops (and is waited for) as soon as the job's function returns or raises,
        before RQ records the result: a heartbeat after that would put the finished execution
        back in the started registry.
        """
        self._beating = _Heartbeat(self, job, execution)
        self._beating.start()
        try:
            yield
        finally:
            self._beating.stop()
            self._beating = None

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        if self._beating is not None:  # an in-process job: no heartbeat once it has ended
            self._beating.stop()
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill the work horse, if one runs.

        An engine job runs in this process: RQ's stop-job and kill-horse commands leave it alone
        (RQ would signal the process group of pid 0, this worker's own); its step's timeout and
        lease still bound it.
        """
        if not self.horse_pid:
            self.log.warning(
                "Worker %s: no work horse to kill; an engine job runs in this process until its "
                "step's timeout",
                self.name,
            )
            return
        super().kill_horse(sig)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Warm shutdown: an in-process job finishes its step but continues no further inline."""
        dispatch.note_stop_requested()
        super().request_stop(signum, frame)

    # --- database connections -------------------------------------------------------------------

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        # A connection must never be shared with the horse; this process should hold none.
        connections.close_all()
        super().fork_work_horse(job, queue)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """Run the job between two checks of the database connections.

        In a horse (any job but the engine's): before, drop a connection that broke or outlived
        CONN_MAX_AGE; after, close what the job used, as a request would. In this process (the
        engine's jobs): keep the connection from job to job, only dropping, before each job, one
        that no longer works.
        """
        if not self.is_horse:
            keep_working_connections()
            return bool(super().perform_job(job, queue, execution))
        close_old_connections()
        try:
            return bool(super().perform_job(job, queue, execution))
        finally:
            close_old_connections()


def keep_working_connections() -> None:
    """Close each database connection of this process that broke or was left in a transaction.

    Unlike close_old_connections, it ignores CONN_MAX_AGE: a worker keeps its connection for its
    life (a new one costs a handshake and a cold server-side cache, a large share of a short
    job). The check is one round trip per open connection (Django's health check query).
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        autocommit = connection.settings_dict["AUTOCOMMIT"]
        if (
            connection.in_atomic_block
            or connection.get_autocommit() != autocommit
            or not connection.is_usable()
        ):
            log.info("Closing the database connection %r: it no longer works", connection.alias)
            connection.close()
        else:
            connection.errors_occurred = False


class _Heartbeat(threading.Thread):
    """Heartbeats of a worker while it runs a job in its own process (RQ's SimpleWorker has none).

    Only Redis is touched here, never the database: the job's connection is not thread-safe.
    """

    def __init__(self, worker: Worker, job: Job, execution: Execution) -> None:
        super().__init__(name=f"heartbeat-{job.id}", daemon=True)
        self.worker = worker
        self.job = job
        self.execution = execution
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = self.worker.job_monitoring_interval
        started = time.monotonic()
        timeout = self.job.timeout or self.worker.queue_class.DEFAULT_TIMEOUT
        while not self.stopped.wait(interval):
            if timeout >= 0 and time.monotonic() - started > timeout + HUNG_JOB_MARGIN:
                self.kill_hung_worker()
                return
            try:
                self.worker.maintain_heartbeats(self.job, self.execution)
            except Exception:
                # Never let a heartbeat end the thread: the next one tries again.
                log.exception("Worker %s: heartbeat failed", self.worker.name)

    def kill_hung_worker(self) -> None:
        log.critical(
            "Worker %s: job %s ran %ss past its timeout of %ss (stuck where no alarm reaches"
            " it); killing the worker, the sweeper takes its step back",
            self.worker.name,
            self.job.id,
            HUNG_JOB_MARGIN,
            self.job.timeout,
        )
        os.kill(os.getpid(), signal.SIGKILL)

    def stop(self) -> None:
        """Stop heart-beating and wait for a heartbeat under way (bounded, should Redis hang)."""
        self.stopped.set()
        if self is not threading.current_thread() and self.is_alive():
            self.join(timeout=self.worker.job_monitoring_interval + 5)
