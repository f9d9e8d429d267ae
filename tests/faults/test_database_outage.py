"""A database outage: the API answers 503 in its error shape, pages a plain 503, nothing doubles.

PostgreSQL: the test database refuses connections and its backends are terminated. SQLite (the
embedded defaults): another connection holds an exclusive lock ("database is locked").
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import django_rq
import pytest
from django.db import close_old_connections, connection
from django.test import override_settings
from factories import UserFactory
from rest_framework.authtoken.models import Token
from subprocesses import ROOT, database_url, free_port
from testkit import three_steps

from bpm import services
from bpm.api.models import IdempotencyRecord, IdempotencyState
from bpm.models import EventType, SagaInstance, StepRun
from orders.models import Order

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="terminates PostgreSQL backends: run with DATABASE_URL=postgres://…",
)
pytestmark = pytest.mark.django_db(transaction=True)

ORDER = {"customer_id": 1, "products": [1, 2], "total": "12.34", "payment_method": "credit_card"}
PAGES = [
    "/admin/",
    "/admin/dashboard/",
    "/admin/dashboard/sagas/",
    "/admin/bpm/sagainstance/",
    "/admin/orders/order/",
]


def place(api, key: str = "order-1"):
    return api.post("/api/v1/orders/", ORDER, HTTP_IDEMPOTENCY_KEY=key)


def assert_api_503(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "service_unavailable"
    assert "database is unreachable" in body["message"]
    assert int(response["Retry-After"]) > 0


def test_an_api_request_during_a_database_outage_is_a_503_in_the_error_shape(shop, database_outage):
    with database_outage.during():
        response = place(shop)
    assert_api_503(response)
    # What every real request does first (the test client leaves it out).
    close_old_connections()
    assert place(shop).status_code == 201
    assert Order.objects.count() == 1


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize("url", PAGES)
def test_a_page_during_a_database_outage_is_a_plain_503(client, database_outage, url, debug):
    client.force_login(UserFactory(is_superuser=True))
    with override_settings(DEBUG=debug), database_outage.during():
        response = client.get(url)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    page = response.content.decode()
    assert "The database is unreachable" in page
    assert 'id="site-name"' in page  # the site's own layout, not Django's error page
    assert "Traceback" not in page and "OperationalError" not in page


@needs_postgresql
def test_a_client_retrying_with_its_key_after_a_503_gets_exactly_one_order(shop, database_outage):
    # The request claims its key (committed), then the database goes down at the order's
    # insert: its work rolls back, and releasing the claim fails too.
    with database_outage.from_query('INSERT INTO "orders_order"'):
        response = place(shop)
    assert_api_503(response)
    assert not Order.objects.exists() and not SagaInstance.objects.exists()
    assert IdempotencyRecord.objects.get().state == IdempotencyState.IN_PROGRESS

    close_old_connections()
    retry = place(shop)
    assert retry.status_code == 201, retry.json()
    assert Order.objects.count() == 1
    assert SagaInstance.objects.count() == 1
    again = place(shop)
    assert (again.status_code, again["Idempotent-Replayed"]) == (201, "true")
    assert again.json() == retry.json()
    assert Order.objects.count() == SagaInstance.objects.count() == 1


@needs_postgresql
def test_a_saga_start_that_died_mid_transaction_left_nothing_behind(shop, database_outage):
    with database_outage.from_query('INSERT INTO "bpm_steprun"'):
        response = shop.post(
            "/api/v1/sagas/", {"definition": "place_order", "input": ORDER}, format="json"
        )
    assert_api_503(response)
    close_old_connections()
    assert not SagaInstance.objects.exists() and not StepRun.objects.exists()


def terminate_other_backends() -> int:
    """Terminate every backend on the test database but the test's own; return how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def poll(condition, timeout: float = 60, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


@needs_postgresql
def test_a_web_process_with_persistent_connections_serves_the_request_after_a_terminated_backend(
    tmp_path,
):
    token = Token.objects.create(user=UserFactory(groups=["viewers"])).key
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": "600",
        "DEBUG": "false",
        "SECRET_KEY": "test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "BPM_SSL_REDIRECT": "false",
    }
    log = (tmp_path / "gunicorn.log").open("ab")
    # One sync worker: every request is served on the same persistent connection.
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bpm.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api/v1/sagas/"
    try:
        poll(lambda: get(url, token) == 200, message="gunicorn")
        assert terminate_other_backends() >= 1
        assert [get(url, token) for _ in range(3)] == [200, 200, 200]
    finally:
        web.terminate()
        web.wait(timeout=15)
        print((tmp_path / "gunicorn.log").read_text(errors="replace")[-3000:])


@needs_postgresql
def test_the_sweeper_survives_terminated_backends_and_an_outage_and_sweeps_again(
    tmp_path, database_outage, the_world
):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": "600",
        "BPM_REDRIVE_GRACE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "sweeper.log"
    sweeper = subprocess.Popen(
        [sys.executable, "manage.py", "sweep", "--forever", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        poll(lambda: "sweeping every" in log_path.read_text(), message="the sweeper to start")
        # Backends terminated in a burst, between and during sweeps.
        for _ in range(5):
            terminate_other_backends()
            time.sleep(0.1)
        # Then a real outage: no connection accepted for a while.
        with database_outage.during():
            failed_before = log_path.read_text().count("sweep failed")
            poll(
                lambda: log_path.read_text().count("sweep failed") >= failed_before + 2,
                message="the sweeper to fail while the database is down",
            )
        assert sweeper.poll() is None, "the sweeper exited during the outage"
        close_old_connections()
        # A doorbell lost while the database was down: the sweeper must ring it again.
        saga = start_lost_saga()
        poll(
            lambda: saga.events.filter(type=EventType.REDRIVEN).exists(),
            message="the sweeper to ring the lost doorbell",
        )
        assert sweeper.poll() is None
    finally:
        sweeper.terminate()
        sweeper.wait(timeout=15)
        print(log_path.read_text(errors="replace")[-4000:])
    failures = log_path.read_text()
    assert "Traceback" in failures  # logged with what went wrong, not swallowed


def start_lost_saga() -> SagaInstance:
    """Start a saga whose first doorbell never reached Redis."""
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    django_rq.get_connection("default").flushdb()
    return saga
