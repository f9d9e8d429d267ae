"""A real rqworker whose Redis stops while it runs a step in its own process (no work horse).

The step finishes on the database, the job's heartbeats and bookkeeping are skipped with a
warning, and the worker waits for Redis and runs on: the saga completes, its payment taken once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from subprocesses import Processes, poll, print_logs

from bpm import services
from bpm.models import SagaInstance, SagaStatus, StepRun, StepStatus
from orders.models import Order
from payments.models import Payment
from payments.services import customer_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def processes(tmp_path: Path, own_redis) -> Iterator[Processes]:
    """Real subprocesses on the test's own redis-server (own_redis set REDIS_URL first)."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()
    print_logs(tmp_path)


def test_a_worker_whose_redis_stops_mid_step_finishes_it_and_runs_on(
    own_redis, processes, tmp_path
):
    worker = processes.worker("worker-1", PAYMENTS_GATEWAY_SLOW_SECONDS="4")
    processes.sweeper()
    customer = customer_create(name="Rich", email="rich@example.com", credit_limit=Decimal("100"))
    order_input = {
        "customer_id": customer.id,
        "products": [1],
        "total": "10.00",
        "payment_method": "card_slow",
    }
    saga = services.saga_start(definition="place_order", input=order_input, actor="test")
    paying = StepRun.objects.filter(saga=saga, step__name="take_payment", status=StepStatus.RUNNING)
    poll(paying.exists, message="the payment step to start")

    own_redis.stop()  # while the step runs in the worker: its heartbeats fail
    poll(lambda: not paying.exists(), message="the payment step to finish without Redis")
    time.sleep(2)  # the job's bookkeeping after the step fails too
    assert worker.poll() is None, "the worker outlived Redis"
    own_redis.start()  # empty, as a restart without persistence leaves it

    finished = SagaInstance.objects.filter(pk=saga.pk, status=SagaStatus.COMPLETED)
    poll(finished.exists, timeout=90, message="the saga to complete")
    assert worker.poll() is None
    order = Order.objects.get(saga_id=saga.id)
    assert Payment.objects.filter(order_id=order.id).count() == 1
    log = (tmp_path / "worker-1.log").read_text()
    assert "Redis is unreachable" in log or "Redis unreachable around job" in log
