"""Real rqworker and sweeper processes: killed workers, a flushed Redis, racing doorbells."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings

from bpm import dispatch, services
from bpm.models import EventType, SagaInstance, SagaStatus, StepRun, StepStatus
from notifications.models import Notification
from orders.models import Order
from payments.models import Payment
from payments.services import customer_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
FINISHED = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.STUCK, SagaStatus.ABORTED)


@pytest.fixture
def rich():
    return customer_create(name="Rich", email="rich@example.com", credit_limit=Decimal("100000"))


def place(customer_id: int, total: str = "10.00", method: str = "credit_card"):
    order_input = {
        "customer_id": customer_id,
        "products": [1],
        "total": total,
        "payment_method": method,
    }
    return services.saga_start(definition="place_order", input=order_input, actor="test")


def status_of(saga) -> str:
    return SagaInstance.objects.values_list("status", flat=True).get(pk=saga.pk)


def all_finished(sagas) -> bool:
    ids = [saga.pk for saga in sagas]
    return not SagaInstance.objects.filter(pk__in=ids).exclude(status__in=FINISHED).exists()


def assert_each_order_took_effect_once(sagas) -> None:
    for saga in sagas:
        assert status_of(saga) == SagaStatus.COMPLETED, saga.id
        order = Order.objects.get(saga_id=saga.id)
        assert order.state == "APPROVED"
        assert Payment.objects.filter(order_id=order.id).count() == 1
        assert Notification.objects.filter(saga_id=saga.id).count() == 1


def test_sagas_complete_and_compensate_on_real_workers(processes, rich, wait_for):
    processes.worker("worker-1")
    processes.worker("worker-2")
    approved = place(rich.id)
    rejected = place(rich.id, total="100000.01")
    wait_for(lambda: all_finished([approved, rejected]), message="both sagas to finish")
    assert status_of(approved) == SagaStatus.COMPLETED
    assert status_of(rejected) == SagaStatus.COMPENSATED
    order = Order.objects.get(saga_id=rejected.id)
    assert (order.state, order.rejection_reason) == ("REJECTED", "INSUFFICIENT_CREDIT")


# A SIGKILL suite of 20 s: once, on the PostgreSQL pass (pyproject.toml's `slow`).
@pytest.mark.slow
def test_a_worker_killed_during_the_payment_step_still_finishes_and_charges_once(
    processes, rich, wait_for
):
    doomed = processes.worker("doomed")
    processes.sweeper()
    saga = place(rich.id, method="card_slow")
    payment_running = StepRun.objects.filter(
        saga=saga, step__name="take_payment", status=StepStatus.RUNNING
    )
    wait_for(payment_running.exists, message="the payment step to start")
    processes.kill(doomed)  # SIGKILL to the worker and its work horse, mid-step
    processes.worker("survivor")
    wait_for(lambda: status_of(saga) in FINISHED, timeout=90, message="the saga to finish")
    assert_each_order_took_effect_once([saga])
    assert saga.events.filter(type=EventType.LEASE_EXPIRED).count() == 1


def test_a_redis_flushed_with_50_sagas_in_flight_loses_none_and_duplicates_nothing(
    processes, rich, redis, wait_for
):
    sagas = [place(rich.id) for _ in range(50)]
    processes.worker("worker-1")
    processes.worker("worker-2")
    processes.sweeper()
    wait_for(
        lambda: SagaInstance.objects.filter(status=SagaStatus.COMPLETED).count() >= 3,
        message="a few sagas to complete",
    )
    redis.flushdb()
    in_flight = SagaInstance.objects.exclude(status__in=FINISHED).count()
    assert in_flight > 0, "every saga finished before the flush; the test proved nothing"
    wait_for(lambda: all_finished(sagas), timeout=180, message="all 50 sagas to finish")
    assert_each_order_took_effect_once(sagas)


def test_duplicated_doorbells_raced_by_two_workers_take_effect_once(processes, rich, wait_for):
    sagas = [place(rich.id) for _ in range(10)]
    for run in StepRun.objects.filter(saga__in=sagas).select_related("step"):
        for _ in range(3):  # the same doorbell, delivered three more times
            dispatch.ring_now(run.id, str(run.token), run.due_at, run.step.timeout, run.step.queue)
    processes.worker("worker-1")
    processes.worker("worker-2")
    wait_for(lambda: all_finished(sagas), timeout=120, message="all sagas to finish")
    assert_each_order_took_effect_once(sagas)
    started = StepRun.objects.filter(saga__in=sagas, step__name="create_order")
    assert all(run.attempts == 1 for run in started)
    assert settings.BPM_QUEUES
