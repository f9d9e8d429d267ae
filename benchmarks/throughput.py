"""Steps per second in this process (an RQ SimpleWorker in burst mode), and their baselines."""

from __future__ import annotations

import time
from collections.abc import Sequence

import django_rq
from django.conf import settings
from django.db import connection, transaction
from rq.worker import SimpleWorker

from benchmarks.handlers import STEPS
from bpm import services
from bpm.models import SagaInstance, SagaStatus

# The cheapest importable job: a function of the project that takes nothing and does nothing.
TRIVIAL_JOB = "bpm.clock.now"


class TimedWorker(SimpleWorker):
    """RQ's SimpleWorker, noting when its burst of jobs ended.

    A burst ends with RQ's teardown, which waits up to a second for its pubsub thread: a fixed
    cost that is not the jobs' and would flatten every ratio towards 1.
    """

    jobs_ended_at: float | None = None

    def unsubscribe(self) -> None:
        self.jobs_ended_at = time.perf_counter()
        super().unsubscribe()


TIMED_WORKER = f"{__name__}.{TimedWorker.__name__}"


def work() -> float:
    """Run every queued job with one in-process SimpleWorker; return how long the jobs took."""
    worker = django_rq.get_worker(*settings.BPM_QUEUES, worker_class=TIMED_WORKER)
    assert isinstance(worker, TimedWorker)
    started = time.perf_counter()
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    return (worker.jobs_ended_at or time.perf_counter()) - started


def rq_jobs_per_second(count: int) -> float:
    """Enqueue `count` trivial jobs, then time one SimpleWorker running them all."""
    queue = django_rq.get_queue(settings.BPM_QUEUES[0])
    for _ in range(count):
        queue.enqueue(TRIVIAL_JOB)
    return count / work()


def commits_per_second(count: int) -> float:
    """Time `count` single-row INSERT + COMMIT transactions on the configured database."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_commit (id integer)")

    try:
        started = time.perf_counter()
        for i in range(count):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_commit (id) VALUES (%s)", [i])
        return count / (time.perf_counter() - started)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_commit")


def steps_per_second(definition: str, sagas: int, *, inline: bool = True) -> float:
    """Start `sagas` sagas (untimed), then time one SimpleWorker running all their steps.

    With `inline` off, every job runs one step (BPM_INLINE_MAX_STEPS and BPM_JOB_MAX_STEPS 1):
    what the engine costs without inline continuation.
    """
    budgets = {"BPM_INLINE_MAX_STEPS": 1, "BPM_JOB_MAX_STEPS": 1} if not inline else {}
    previous = {name: getattr(settings, name) for name in budgets}
    for name, value in budgets.items():
        setattr(settings, name, value)
    try:
        started = [start(definition) for _ in range(sagas)]
        elapsed = work()
    finally:
        for name, value in previous.items():
            setattr(settings, name, value)
    require_completed([saga.pk for saga in started])
    return sagas * STEPS / elapsed


def start(definition: str) -> SagaInstance:
    return services.saga_start(definition=definition, input={}, actor="bench")


def require_completed(saga_ids: Sequence[object]) -> None:
    """Stop the benchmark when a saga did not complete: its figure would mean nothing."""
    done = SagaInstance.objects.filter(pk__in=saga_ids, status=SagaStatus.COMPLETED).count()
    if done != len(saga_ids):
        raise RuntimeError(f"only {done} of {len(saga_ids)} benchmark sagas completed")
