"""Redis stopped: work is still accepted and runs once Redis returns; pages say Redis is down.

The test starts a redis-server of its own on a free loopback port, stops it, and starts it again
empty, as a restart without persistence leaves it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from factories import CustomerFactory, UserFactory
from testkit import drain, with_pivot, work

from bpm import clock, services, sweeper
from bpm.models import SagaInstance, SagaStatus, StepRun, StepStatus, StuckReason
from orders.models import Order, OrderState

pytestmark = pytest.mark.django_db(transaction=True)


def order_input(customer_id: int) -> dict:
    return {
        "customer_id": customer_id,
        "products": [1, 2],
        "total": "12.34",
        "payment_method": "credit_card",
    }


def first_steps_waiting() -> list[StepRun]:
    """Return the first steps (place_order's create_order) that never ran."""
    return list(
        StepRun.objects.filter(step__name="create_order", status=StepStatus.PENDING, attempts=0)
    )


def test_orders_and_saga_starts_are_accepted_while_redis_is_down_and_run_once_it_returns(
    shop, own_redis, caplog
):
    customer = CustomerFactory(owner=User.objects.get(groups__name="clients"))
    own_redis.stop()

    with caplog.at_level(logging.WARNING):
        order = shop.post(
            "/api/v1/orders/", order_input(customer.pk), HTTP_IDEMPOTENCY_KEY="order-1"
        )
        saga = shop.post(
            "/api/v1/sagas/", {"definition": "place_order", "input": order_input(customer.pk)}
        )
    started = services.saga_start(
        definition="place_order", input=order_input(customer.pk), actor="test"
    )

    assert (order.status_code, saga.status_code) == (201, 201), (order.json(), saga.json())
    assert "not applied: Redis is unreachable" in caplog.text
    assert SagaInstance.objects.filter(status=SagaStatus.RUNNING).count() == 3
    assert len(first_steps_waiting()) == 3

    own_redis.start()
    work()
    assert len(first_steps_waiting()) == 3, "no doorbell survived: only the sweeper can ring"
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.sweep_once().redriven == 3
    work()
    assert first_steps_waiting() == []
    drain()
    assert set(SagaInstance.objects.values_list("status", flat=True)) == {SagaStatus.COMPLETED}
    assert Order.objects.get(pk=order.json()["id"]).state == OrderState.APPROVED
    assert SagaInstance.objects.filter(pk=started.pk, status=SagaStatus.COMPLETED).exists()


def test_the_sweeper_flags_deadlines_while_redis_is_down_and_rings_once_it_returns(
    own_redis, caplog
):
    customer = CustomerFactory()
    own_redis.stop()
    waiting = services.saga_start(
        definition="place_order", input=order_input(customer.pk), actor="test"
    )
    overdue = services.saga_start(
        definition="place_order",
        input=order_input(customer.pk),
        deadline=clock.now() + timedelta(seconds=1),
        actor="test",
    )
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)

    with caplog.at_level(logging.WARNING):
        report = sweeper.sweep_once()

    assert (report.redriven, report.timed_out) == (0, 1)
    assert "Redis is unreachable" in caplog.text
    overdue.refresh_from_db()
    assert overdue.stuck_reason == StuckReason.TIMED_OUT
    own_redis.start()
    assert sweeper.sweep_once().redriven == 1
    work()
    drain()
    waiting.refresh_from_db()
    assert waiting.status == SagaStatus.COMPLETED


def test_every_page_works_or_says_redis_is_unreachable_while_redis_is_down(client, shop, own_redis):
    customer = CustomerFactory()
    placed = shop.post("/api/v1/orders/", order_input(customer.pk)).json()
    saga_id = placed["saga"]
    client.force_login(UserFactory(is_superuser=True))
    own_redis.stop()

    pages = [
        "/admin/",
        "/admin/dashboard/sagas/",
        f"/admin/dashboard/sagas/{saga_id}/",
        "/admin/dashboard/definitions/",
        "/admin/dashboard/definitions/place_order/",
        "/admin/bpm/sagainstance/",
        f"/admin/bpm/sagainstance/{saga_id}/change/",
        "/admin/bpm/sagadefinition/",
        "/admin/orders/order/",
        f"/admin/orders/order/{placed['id']}/change/",
        "/admin/payments/customer/",
    ]
    answers = {url: client.get(url).status_code for url in pages}
    assert answers == dict.fromkeys(pages, 200)

    overview = client.get("/admin/dashboard/")
    assert overview.status_code == 200
    assert "Redis is unreachable" in overview.content.decode()

    # RQ's own pages read nothing but Redis: they say so instead of failing.
    for url in ("/django-rq/", "/admin/django_rq/dashboard/"):
        response = client.get(url)
        assert response.status_code == 503, url
        assert "Redis is unreachable" in response.content.decode()

    api = [
        "/api/v1/sagas/",
        f"/api/v1/sagas/{saga_id}/",
        f"/api/v1/sagas/{saga_id}/events/",
        f"/api/v1/orders/{placed['id']}/",
        f"/api/v1/customers/{customer.pk}/",
        "/api/v1/definitions/",
    ]
    operator = UserFactory(groups=["operators"])
    shop.force_authenticate(operator)
    answers = {url: shop.get(url).status_code for url in api}
    assert answers == dict.fromkeys(api, 200)


def test_an_operator_retry_while_redis_is_down_is_accepted_and_runs_once_it_returns(
    own_redis, the_world
):
    saga = services.saga_start(definition=with_pivot().name, input={}, actor="test")
    the_world.will("after", "fault", "fault", "fault")
    drain()
    assert SagaInstance.objects.get(pk=saga.pk).status == SagaStatus.STUCK
    own_redis.stop()

    services.saga_retry(saga_id=saga.pk, reason="mail server back", actor="user:olga")

    assert SagaInstance.objects.get(pk=saga.pk).status == SagaStatus.RUNNING
    own_redis.start()
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.sweep_once().redriven == 1
    work()
    assert SagaInstance.objects.get(pk=saga.pk).status == SagaStatus.COMPLETED
