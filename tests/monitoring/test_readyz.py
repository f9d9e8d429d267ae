"""/readyz: 200 only when the database, its migrations, Redis, a worker per queue and the
sweeper are all there; 503 naming what is missing otherwise. Real Redis, real RQ registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import django_rq
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rq.utils import utcformat

from bpm import clock
from bpm.monitoring import readiness
from bpm.worker import Worker

pytestmark = pytest.mark.django_db

CHECKS = ["database", "migrations", "redis", "workers", "sweeper"]


@pytest.fixture(autouse=True)
def _migrations_read_again() -> Iterator[None]:
    readiness._migrated = False
    yield
    readiness._migrated = False


def register_worker(name: str, *queues: str) -> Worker:
    """Register a worker in RQ's registry, heartbeating now, as `rqworker` does at start."""
    worker = Worker(
        list(queues or settings.BPM_QUEUES),
        name=name,
        connection=django_rq.get_connection("default"),
    )
    worker.register_birth()
    return worker


def sweep() -> None:
    call_command("sweep", stdout=open("/dev/null", "w"))  # noqa: SIM115 - closed with the process


def test_without_a_worker_or_a_sweep_it_answers_503_saying_what_is_missing(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert list(body["checks"]) == CHECKS
    checks = body["checks"]
    assert [checks[name]["ok"] for name in CHECKS] == [True, True, True, False, False]
    assert checks["workers"]["detail"].startswith("no live worker serves default")
    assert "has not swept" in checks["sweeper"]["detail"]
    assert all(set(check) == {"ok", "detail", "seconds"} for check in checks.values())


def test_with_a_live_worker_on_every_queue_and_a_fresh_sweep_it_answers_200(client: Client) -> None:
    register_worker("w1")
    sweep()

    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"
    assert response.json()["checks"]["workers"]["detail"] == "live workers by queue: default: 1"


def test_a_queue_no_worker_serves_makes_it_503(client: Client, settings) -> None:
    settings.BPM_QUEUES = ["default", "slow"]
    register_worker("w1", "default")
    sweep()

    workers = client.get("/readyz").json()["checks"]["workers"]

    assert workers["ok"] is False
    assert workers["detail"] == (
        "no live worker serves slow (live workers by queue: default: 1, slow: 0)"
    )


def test_a_registered_worker_whose_heartbeat_stopped_does_not_count(client: Client) -> None:
    # What a SIGKILLed worker leaves behind: still registered, its last heartbeat getting old.
    worker = register_worker("w1")
    old = datetime.now(UTC) - timedelta(seconds=settings.BPM_REDRIVE_GRACE + 5)
    worker.connection.hset(worker.key, "last_heartbeat", utcformat(old))
    sweep()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["detail"].startswith("no live worker serves")


def test_a_sweeper_silent_for_three_intervals_makes_it_503(client: Client) -> None:
    register_worker("w1")
    sweep()
    clock.advance(3 * settings.BPM_SWEEP_INTERVAL - 0.5)
    assert client.get("/readyz").status_code == 200

    clock.advance(1)
    response = client.get("/readyz")

    assert response.status_code == 503
    detail = response.json()["checks"]["sweeper"]["detail"]
    assert detail.startswith("the sweeper last swept")
    assert f"more than {3 * settings.BPM_SWEEP_INTERVAL:g}s" in detail


def test_an_unapplied_migration_makes_it_503_naming_it(client: Client) -> None:
    register_worker("w1")
    sweep()
    recorder = MigrationRecorder(connection)
    latest = max(name for app, name in recorder.applied_migrations() if app == "bpm")
    recorder.record_unapplied("bpm", latest)
    try:
        response = client.get("/readyz")
    finally:
        recorder.record_applied("bpm", latest)

    assert response.status_code == 503
    migrations = response.json()["checks"]["migrations"]
    assert migrations == {**migrations, "ok": False}
    assert migrations["detail"] == f"1 migration(s) not applied: bpm.{latest}"


def test_once_migrated_it_only_reads_the_database_with_one_select(client: Client) -> None:
    register_worker("w1")
    sweep()
    assert client.get("/readyz").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/readyz")

    assert response.status_code == 200
    assert [query["sql"] for query in queries.captured_queries] == ["SELECT 1"]
    assert not response.cookies


@pytest.mark.parametrize("debug", [True, False])
def test_it_answers_a_plain_http_probe_by_address_with_debug_on_and_off(
    client: Client, settings, debug: bool
) -> None:
    settings.DEBUG = debug
    settings.SECURE_SSL_REDIRECT = not debug
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    register_worker("w1")
    sweep()

    response = client.get("/readyz", HTTP_HOST="10.0.0.7", secure=False)

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
