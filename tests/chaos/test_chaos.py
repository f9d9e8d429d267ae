"""Orders placed through the API while workers, Redis, the database and the sweeper fail.

The production process set (gunicorn, three `rqworker --with-scheduler`, `sweep --forever`) runs
against the test database and Redis. The plan (see chaos_plan.py) is drawn from the seed printed
at the start; the checks (chaos_checks.py) run once the faults stop and the sagas settle.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import chaos_checks as checks
import chaos_plan as plan
import django_rq
import pytest
from chaos_client import Client
from chaos_faults import FaultLog, Stack
from django.db import connection
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rq import Worker
from subprocesses import answers, free_port, poll

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
WORKERS = 3
# After the last fault: how long every saga has to end (terminal, or STUCK with a reason).
SETTLING_SECONDS = 60


def start(stack: Stack) -> Client:
    """Start gunicorn, the workers and the sweeper; return a client once all of them are up."""
    port = free_port()
    web = stack.processes.gunicorn(port, workers=2)
    for _ in range(WORKERS):
        stack.start_worker()
    stack.start_sweeper()
    base_url = f"http://127.0.0.1:{port}"
    poll(lambda: answers(f"{base_url}/admin/login/", web), timeout=60, message="gunicorn")
    redis = django_rq.get_connection("default")
    poll(lambda: len(Worker.all(connection=redis)) >= WORKERS, timeout=60, message="3 workers")
    user = UserFactory(username="chaos-shop", groups=["clients"], is_staff=False)
    return Client(base_url, Token.objects.create(user=user).key)


def open_accounts(client: Client, the_plan: plan.Plan) -> dict[int, int]:
    """Create the plan's customers through the API; return their ids by plan index."""
    ids = {}
    for customer in the_plan.customers:
        body = {"name": customer.name, "credit_limit": str(customer.credit_limit)}
        if customer.email:
            body["email"] = customer.email
        answer = client.post_until_decided("/api/v1/customers/", body, f"customer-{customer.index}")
        assert answer.status == 201, answer
        ids[customer.index] = answer.body["id"]
    return ids


def order_body(order: plan.OrderPlan, customer_ids: dict[int, int]) -> dict[str, object]:
    if order.customer is None:
        customer_id = max(customer_ids.values()) + 1000 + order.index  # nobody has this id
    else:
        customer_id = customer_ids[order.customer]
    body: dict[str, object] = {
        "customer_id": customer_id,
        "products": [order.index % 7 + 1],
        "total": str(order.total),
        "payment_method": order.method,
    }
    return body


def place(client: Client, order: plan.OrderPlan, customer_ids: dict[int, int]) -> None:
    """Place the order, replaying its key after the answer or concurrently as planned."""
    body = order_body(order, customer_ids)

    def post() -> None:
        client.post_until_decided("/api/v1/orders/", body, order.key)

    if order.replay == plan.REPLAY_CONCURRENT:
        with ThreadPoolExecutor(2) as both:
            for future in [both.submit(post), both.submit(post)]:
                future.result()
        return
    post()
    if order.replay == plan.REPLAY_AFTER:
        post()


def run_faults(stack: Stack, faults: queue.Queue[plan.Fault | None]) -> None:
    """Inject the faults handed over by the order loop, in order, until told to stop."""
    while (fault := faults.get()) is not None:
        try:
            stack.inject(fault)
        except Exception as exc:
            stack.log.note(f"injecting {fault} failed: {type(exc).__name__}: {exc}")


def test_orders_survive_killed_workers_a_flushed_redis_dropped_connections_and_a_dead_sweeper(
    stack: Stack, chaos_plan: plan.Plan, fault_log: FaultLog
):
    client = start(stack)
    customer_ids = open_accounts(client, chaos_plan)
    faults: queue.Queue[plan.Fault | None] = queue.Queue()
    injector = threading.Thread(target=run_faults, args=(stack, faults), daemon=True)
    injector.start()
    began = time.monotonic()
    with ThreadPoolExecutor(16) as shop:
        placing = []
        for order in chaos_plan.orders:
            time.sleep(max(0.0, began + order.index * plan.ORDER_SPACING - time.monotonic()))
            for fault in chaos_plan.faults_at(order.index):
                faults.put(fault)
            placing.append(shop.submit(place, client, order, customer_ids))
        faults.put(None)
        for future in placing:
            future.result()
    injector.join(timeout=120)
    fault_log.note("faults stopped and every order placed")
    # The outages terminated this process's own connection too.
    connection.close()

    deadline = time.monotonic() + SETTLING_SECONDS
    while (unsettled := checks.unsettled_sagas()) and time.monotonic() < deadline:
        time.sleep(1)
    fault_log.note(f"{len(unsettled)} sagas unsettled after {SETTLING_SECONDS}s")

    mail_dir = Path(stack.processes.overrides["BPM_VAR_DIR"]) / "mail"
    checker = checks.Checker(
        chaos_plan, customer_ids, client, fault_log, stack.live_worker_names(), mail_dir
    )
    findings = checker.run(unsettled)
    report = checks.report(chaos_plan, findings, fault_log)
    (stack.processes.log_dir / "chaos-report.txt").write_text(report)
    print(report)
    assert not findings.failed, report
