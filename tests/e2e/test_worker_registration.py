"""A worker that Redis forgot (restarted empty, or a replica promoted too early) registers again."""

from __future__ import annotations

import pytest
from rq.worker import Worker as RQWorker

pytestmark = [pytest.mark.e2e]


def registered(redis) -> set[str]:
    return {worker.name for worker in RQWorker.all(connection=redis)}


def test_a_worker_registers_again_after_redis_lost_its_registration(processes, redis, wait_for):
    processes.worker("remembered")
    wait_for(lambda: registered(redis) == {"remembered"}, timeout=30, message="the worker")
    redis.flushdb()
    assert registered(redis) == set()
    wait_for(
        lambda: registered(redis) == {"remembered"},
        timeout=30,
        message="the worker to register again at its next heartbeat",
    )
