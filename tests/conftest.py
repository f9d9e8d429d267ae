"""Shared fixtures: a real Redis flushed around each test, the fake clock, in-process workers."""

from __future__ import annotations

from collections.abc import Iterator

import django_rq
import pytest
from django.conf import settings

from bpm import clock, definitions, log_context

pytest_plugins = ["testkit"]
pytest.register_assert_rewrite("testkit")

from testkit import drain  # noqa: E402 - after the rewrite hook is registered


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, not in tests/chaos/conftest.py: options only register from the first conftests read.
    parser.addoption(
        "--chaos-seed",
        type=int,
        default=None,
        help="seed of the chaos suite's plan (default: $BPM_CHAOS_SEED, else a fixed seed)",
    )


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
    log_context.unbind_process()


@pytest.fixture
def drained() -> object:
    """Return the drain function (work until every saga waits on nothing)."""
    return drain
