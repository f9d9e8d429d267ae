"""Probes and metrics against real processes: rqworker, the sweeper, gunicorn with two workers.

/readyz follows real workers coming and dying (SIGKILL) and the sweeper's heartbeat; /metrics,
served by gunicorn in multiprocess mode, adds up what the work horses and every web worker
recorded, whichever web worker answers the scrape.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from scraping import parse, value
from subprocesses import Processes, answers, free_port

from bpm import services
from bpm.models import SagaInstance, SagaStatus
from bpm.monitoring import process_slots
from payments.services import customer_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def place(customer_id: int) -> SagaInstance:
    order_input = {
        "customer_id": customer_id,
        "products": [1],
        "total": "10.00",
        "payment_method": "credit_card",
    }
    return services.saga_start(definition="place_order", input=order_input, actor="test")


def readiness(client: Client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.json()["checks"]


def test_readyz_follows_a_real_worker_and_sweeper_starting_and_the_worker_dying(
    processes: Processes, wait_for, client: Client, settings
) -> None:
    settings.BPM_REDRIVE_GRACE = 1  # as the subprocesses have it: a dead worker shows in 1s
    settings.BPM_SWEEP_INTERVAL = 0.5
    status, checks = readiness(client)
    assert status == 503
    assert (checks["workers"]["ok"], checks["sweeper"]["ok"]) == (False, False)

    worker = processes.worker("worker-1")
    wait_for(lambda: readiness(client)[1]["workers"]["ok"], message="the worker to count")
    assert readiness(client)[0] == 503, "no sweeper yet"
    processes.sweeper(interval=0.5)
    wait_for(lambda: readiness(client)[0] == 200, message="/readyz to answer 200")

    processes.kill(worker)
    wait_for(lambda: readiness(client)[0] == 503, message="the dead worker to stop counting")
    assert readiness(client)[1]["workers"]["detail"].startswith("no live worker serves default")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow  # gunicorn, a worker and three sagas: once, on the PostgreSQL pass
def test_gunicorn_workers_and_work_horses_all_count_in_one_scrape(tmp_path: Path, wait_for) -> None:
    metrics_dir = process_slots.prepare(tmp_path / "var")
    processes = Processes(tmp_path, {process_slots.ENVIRONMENT_VARIABLE: str(metrics_dir)})
    try:
        port = free_port()
        web = processes.gunicorn(port, workers=2)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/healthz", web), timeout=60, message="gunicorn")
        processes.worker("worker-1")
        rich = customer_create(
            name="Rich", email="rich@example.com", credit_limit=Decimal("100000")
        )
        sagas = [place(rich.id) for _ in range(3)]
        requests = 20
        for _ in range(requests):
            assert get(f"{base}/api/v1/definitions/")[0] == 401

        wait_for(
            lambda: not SagaInstance.objects.exclude(status=SagaStatus.COMPLETED).exists(),
            message="the sagas to complete",
        )
        for _ in range(4):  # whichever gunicorn worker answers, the totals are the same
            status, body = get(f"{base}/metrics")
            assert status == 200, body
            samples = parse(body.decode())
            route = {"route": "/api/v1/definitions/", "method": "GET", "status": "401"}
            assert value(samples, "bpm_http_requests_total", **route) == requests
            step = {
                "definition": "place_order",
                "step": "create_order",
                "direction": "forward",
                "outcome": "succeeded",
            }
            assert value(samples, "bpm_step_attempts_total", **step) == len(sagas)
            assert value(samples, "bpm_step_duration_seconds_count", **step) == len(sagas)
            completed = {"definition": "place_order", "outcome": "completed"}
            assert value(samples, "bpm_saga_duration_seconds_count", **completed) == len(sagas)
            assert value(samples, "bpm_sagas", definition="place_order", status="COMPLETED") == 3
            assert value(samples, "bpm_workers", queue="default") == 1

        # A work horse per job, yet files only for the four processes alive at once: two web
        # workers, the RQ worker and its current horse.
        files = sorted(path.name for path in metrics_dir.glob("*.db"))
        assert len({name.rsplit("_", 1)[1] for name in files}) <= 4, files
        readyz = json.loads(get(f"{base}/readyz")[1])
        assert readyz["checks"]["workers"]["ok"] is True
    finally:
        processes.stop_all()


def test_with_debug_off_gunicorn_answers_probes_by_address_over_plain_http(
    tmp_path: Path, wait_for
) -> None:
    production = {
        "DEBUG": "false",
        "SECRET_KEY": "test-only-" + "x" * 60,
        "ALLOWED_HOSTS": "shop.example.com",
    }
    processes = Processes(tmp_path, production)
    try:
        port = free_port()
        web = processes.gunicorn(port, workers=1)
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz", web), message="gunicorn")

        def ask(path: str) -> tuple[int, str | None, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path, headers={"Host": "10.0.0.7:8000"})
            response = connection.getresponse()
            answer = (response.status, response.getheader("Content-Type"), response.read())
            connection.close()
            return answer

        assert ask("/healthz")[:2] == (200, "application/json")
        status, kind, body = ask("/readyz")
        assert (status, kind) == (503, "application/json"), body
        assert json.loads(body)["checks"]["workers"]["ok"] is False
        assert ask("/metrics")[0] == 200
        assert ask("/admin/login/")[0] == 400, "any other page still checks the host"
    finally:
        processes.stop_all()
