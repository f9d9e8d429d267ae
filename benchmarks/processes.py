"""Figures from real `rqworker` processes: latency with idle workers, and 2 workers against 1."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import django_rq
from django.conf import settings
from django.db import connection, transaction
from rq.job import JobStatus
from rq.worker import Worker

from benchmarks import handlers
from benchmarks.throughput import TRIVIAL_JOB, require_completed, start
from bpm.models import SagaInstance, SagaStatus

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.005  # how often a latency sample looks whether its job or saga has ended (seconds)
SAMPLE_EVERY = 0.1  # how often a throughput run counts what is done (seconds)
READY_TIMEOUT = 60
RUN_TIMEOUT = 600


def database_url() -> str:
    """Return a DATABASE_URL that points a worker process at this process's database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def workers(count: int, log_dir: Path) -> Iterator[None]:
    """Run `count` rqworker processes (bpm's worker class) until the block ends; wait until
    each one is registered and idle."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "BPM_VAR_DIR": str(settings.VAR_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    names = [f"bench-{os.getpid()}-{count}-{i}" for i in range(count)]
    started = []
    try:
        for name in names:
            log = (log_dir / f"{name}.log").open("ab")
            argv = [sys.executable, "-m", "benchmarks.rqworker", "--name", name]
            started.append(
                subprocess.Popen(
                    [*argv, *settings.BPM_QUEUES],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        _wait_until_idle(names, started)
        yield
    finally:
        _stop(started)


def _wait_until_idle(names: list[str], processes: list[subprocess.Popen[bytes]]) -> None:
    redis = django_rq.get_connection(settings.BPM_QUEUES[0])
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError("a benchmark worker exited at start; see its log under var/")
        idle = {w.name for w in Worker.all(connection=redis) if w.get_state() == "idle"}
        if idle >= set(names):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the benchmark workers were not idle after {READY_TIMEOUT}s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask every worker to stop (RQ's warm shutdown), then kill the ones that do not."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish within {RUN_TIMEOUT}s")
        time.sleep(POLL)


# --- latency and throughput with 1 and 2 worker processes ----------------------------------


@dataclass
class Scaling:
    engine_one: float  # steps/s with one worker process
    engine_two: float
    rq_one: float  # trivial jobs/s with one worker process
    rq_two: float


@dataclass
class RealWorkers:
    rq_p50: float  # seconds, one trivial job from enqueue to FINISHED, one idle worker
    saga_p50: float  # seconds, a 4-step no-op saga from start to COMPLETED, one idle worker
    scaling: list[Scaling]  # one per repeat


def measure(*, samples: int, sagas: int, repeat: int, log_dir: Path) -> RealWorkers:
    """Latency against one idle worker, then steps/s and jobs/s with 1 and with 2 workers."""
    with workers(1, log_dir):
        rq_p50, saga_p50 = _latency(samples)
        one = [(_engine_rate(sagas), _rq_rate(sagas * handlers.STEPS)) for _ in range(repeat)]
    with workers(2, log_dir):
        two = [(_engine_rate(sagas), _rq_rate(sagas * handlers.STEPS)) for _ in range(repeat)]
    return RealWorkers(
        rq_p50=rq_p50,
        saga_p50=saga_p50,
        scaling=[
            Scaling(engine_one=e1, engine_two=e2, rq_one=r1, rq_two=r2)
            for (e1, r1), (e2, r2) in zip(one, two, strict=True)
        ],
    )


def _latency(samples: int, pause: float = 0.05) -> tuple[float, float]:
    """Saga runs, then RQ round trips, against the same idle worker; return both medians.

    One kind at a time: a trivial job runs in a forked horse, before which the worker closes its
    database connection (a horse must never share it), so alternating the two would make every
    saga open a new connection, which a worker running only the engine's jobs never does. The
    first of each is a warm-up (the worker's first connection, its first fork), not counted;
    `pause` lets the worker go idle again between samples.
    """
    saga_times: list[float] = []
    for _ in range(samples + 1):
        saga_times.append(_saga_round_trip())
        time.sleep(pause)
    rq_times: list[float] = []
    for _ in range(samples + 1):
        rq_times.append(_rq_round_trip())
        time.sleep(pause)
    return statistics.median(rq_times[1:]), statistics.median(saga_times[1:])


def _rq_round_trip() -> float:
    """Seconds from the enqueue to the end of the job, as the worker stamped it (`ended_at`)."""
    queue = django_rq.get_queue(settings.BPM_QUEUES[0])
    started = datetime.now(UTC)
    job = queue.enqueue(TRIVIAL_JOB)
    _wait(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, "a trivial RQ job")
    job.refresh()
    assert job.ended_at is not None
    return (job.ended_at.replace(tzinfo=UTC) - started).total_seconds()


def _saga_round_trip() -> float:
    """Seconds from the start to the saga's completion, as the worker stamped it (`finished_at`).

    Both sides are read off the timestamps the worker wrote, not off when this process noticed:
    the polling (a query every POLL) decides neither figure, it only finds out that they exist.
    """
    started = datetime.now(UTC)
    saga = start(handlers.TRANSACTIONAL)
    completed = SagaInstance.objects.filter(pk=saga.pk, status=SagaStatus.COMPLETED)
    _wait(completed.exists, "a benchmark saga")
    finished_at = completed.values_list("finished_at", flat=True).get()
    assert finished_at is not None
    return (finished_at - started).total_seconds()


def _engine_rate(sagas: int) -> float:
    # One transaction: every doorbell rings at its commit, faster than the workers take them.
    with transaction.atomic():
        ids = [start(handlers.TRANSACTIONAL).pk for _ in range(sagas)]
    done = SagaInstance.objects.filter(pk__in=ids, status=SagaStatus.COMPLETED)
    rate = _steady_rate(lambda: done.count() * handlers.STEPS, sagas * handlers.STEPS)
    require_completed(ids)
    return rate


def _rq_rate(jobs: int) -> float:
    queue = django_rq.get_queue(settings.BPM_QUEUES[0])
    finished = queue.finished_job_registry
    before = finished.get_job_count(cleanup=False)
    for _ in range(jobs):
        queue.enqueue(TRIVIAL_JOB)
    return _steady_rate(lambda: finished.get_job_count(cleanup=False) - before, jobs)


def _steady_rate(count_done: Callable[[], int], total: int) -> float:
    """Return the rate between 10% and 90% done: the workers' pace, without ramp-up and tail.

    A run too short to be sampled in between falls back to its whole duration.
    """
    low, high = total * 0.1, total * 0.9
    started = time.perf_counter()
    first: tuple[float, int] | None = None
    last: tuple[float, int] | None = None
    deadline = time.monotonic() + RUN_TIMEOUT
    while (done := count_done()) < total:
        now = time.perf_counter()
        if first is None and done >= low:
            first = (now, done)
        if last is None and done >= high:
            last = (now, done)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the throughput run did not finish within {RUN_TIMEOUT}s")
        time.sleep(SAMPLE_EVERY)
    if first is not None and last is not None and last[1] > first[1]:
        return (last[1] - first[1]) / (last[0] - first[0])
    return total / (time.perf_counter() - started)
