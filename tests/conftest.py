"""Shared fixtures: a real Redis flushed around each test, the fake clock, in-process workers."""

from __future__ import annotations

from collections.abc import Iterator

import django_rq
import pytest
from django.conf import settings

from bpm import clock, definitions, dispatch
from bpm.models import ACTIVE_STATUSES, SagaInstance, StepRun, StepStatus

pytest_plugins = ["testkit"]


@pytest.fixture(scope="session", autouse=True)
def redis_server() -> Iterator[None]:
    """Start the embedded Redis for the session when no REDIS_URL is given."""
    if not settings.EMBEDDED_REDIS:
        yield
        return
    from bpm import embedded_redis

    socket_path = embedded_redis.socket_path_from_url(settings.REDIS_URL)
    started = embedded_redis.ensure_running(socket_path)
    yield
    if started:
        embedded_redis.stop(socket_path)


@pytest.fixture(autouse=True)
def redis(redis_server: None) -> Iterator[object]:
    """Return the Redis connection, flushed before and after the test."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture(autouse=True)
def _fresh_clock_and_caches() -> Iterator[None]:
    clock.reset()
    definitions.steps_of.cache_clear()
    yield
    clock.reset()
    definitions.steps_of.cache_clear()


def work() -> None:
    """Run an in-process burst worker until the queues are empty."""
    worker = django_rq.get_worker(*settings.BPM_QUEUES, worker_class="rq.worker.SimpleWorker")
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")


def drain(max_rounds: int = 100) -> None:
    """Work until no active saga has a run waiting, moving the fake clock over backoffs."""
    for _ in range(max_rounds):
        work()
        waiting = list(
            StepRun.objects.filter(
                status=StepStatus.PENDING, saga__status__in=ACTIVE_STATUSES
            ).select_related("step")
        )
        if not waiting:
            return
        earliest = min(run.due_at for run in waiting)
        if earliest > clock.now():
            clock.advance((earliest - clock.now()).total_seconds())
        for run in waiting:
            if run.due_at <= clock.now():
                dispatch.ring_now(
                    run.id, str(run.token), run.due_at, run.step.timeout, run.step.queue
                )
    raise AssertionError("sagas still running after draining")


@pytest.fixture
def drained() -> object:
    """Return the drain function (work until every saga waits on nothing)."""
    return drain


def fresh(saga: SagaInstance) -> SagaInstance:
    """Return the saga as the database has it now."""
    return SagaInstance.objects.get(pk=saga.pk)
