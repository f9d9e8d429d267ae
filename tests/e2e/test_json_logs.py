"""JSON logs from real processes: a worker's lines name the request that started the saga."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bpm.models import SagaInstance, SagaStatus

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STEPS = {"create_order", "take_payment", "send_confirmation", "approve_order"}


def json_lines(path: Path) -> list[dict]:
    """Return every line of the log as a JSON object; fail on any line that is not one."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line!r}") from None
    return entries


def test_a_worker_logs_json_lines_naming_the_request_saga_step_attempt_and_worker(
    processes, wait_for, tmp_path
):
    processes.overrides["BPM_LOG_FORMAT"] = "json"
    user = UserFactory(username="shop", groups=["clients"], is_staff=False)
    shop = APIClient()
    shop.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    customer = shop.post("/api/v1/customers/", {"name": "Ada", "credit_limit": "50.00"}).json()
    order = {
        "customer_id": customer["id"],
        "products": [1],
        "total": "12.34",
        "payment_method": "credit_card",
    }
    response = shop.post("/api/v1/orders/", order, HTTP_X_REQUEST_ID="shop-req-42")
    assert response.status_code == 201, response.json()
    assert response["X-Request-ID"] == "shop-req-42"
    saga = SagaInstance.objects.get(request_id="shop-req-42")

    processes.worker("worker-1")
    processes.sweeper()
    wait_for(
        lambda: SagaInstance.objects.get(pk=saga.pk).status == SagaStatus.COMPLETED,
        message="the saga to complete",
    )
    processes.stop_all()

    worker = json_lines(tmp_path / "worker-1.log")
    assert {"time", "level", "logger", "message"} <= set(worker[0])
    assert any(e["logger"].startswith("rq.") for e in worker), "RQ's own lines are JSON too"
    assert all(e.get("worker") == "worker-1" for e in worker if e["logger"].startswith("rq."))
    of_saga = [e for e in worker if e.get("saga_id") == str(saga.id)]
    assert {e["step"] for e in of_saga} == STEPS
    for entry in of_saga:
        assert entry["request_id"] == "shop-req-42"
        assert entry["attempt"] == 1
        assert entry["worker"] == "worker-1"
    assert json_lines(tmp_path / "sweeper.log"), "the sweeper logged as JSON"
