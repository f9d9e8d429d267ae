"""review_large_order on in-process workers: fraud desk (task token), warehouse (signal), review."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from factories import UserFactory
from testkit import fresh

from bpm import answers, engine, services
from bpm.models import EventType, SagaStatus, StepStatus
from demo import sagas as demo_sagas
from orders.models import Order
from payments.models import Payment
from payments.services import customer_available_credit, customer_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def margaret():
    return customer_create(name="Margaret", email="m@example.com", credit_limit="100000.00")


@pytest.fixture
def reviewer():
    return UserFactory(username="rita", groups=["reviewers", "viewers"])


def order(customer, total):
    return services.saga_start(
        definition=demo_sagas.NAME,
        input={
            "customer_id": customer.pk,
            "products": [1],
            "total": total,
            "payment_method": "credit_card",
        },
        actor="test",
    )


def test_the_reviewers_group_exists_after_migrate():
    assert Group.objects.filter(name=demo_sagas.REVIEWERS).exists()


def test_a_large_order_is_paid_only_after_the_warehouse_and_a_reviewer(margaret, reviewer, drained):
    saga = order(margaret, "1500.00")
    drained()
    saga = fresh(saga)
    assert saga.context["fraud_check"] == {"score": 1, "verdict": "pass"}
    waiting = saga.step_runs.get(step__name="warehouse")
    assert waiting.status == StepStatus.WAITING
    assert not Payment.objects.exists()

    engine.receive_signal(saga.pk, demo_sagas.WAREHOUSE_SIGNAL, {"bin": "A7"}, actor="test")
    drained()
    [task] = answers.tasks_for(reviewer)
    assert task.saga_id == saga.pk and not Payment.objects.exists()

    answers.task_complete(task_id=task.pk, user=reviewer, data={"risk": "low", "note": "known"})
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["review"] == {"risk": "low", "note": "known"}
    assert Order.objects.get(saga_id=saga.pk).state == "APPROVED"
    assert Payment.objects.count() == 1


def test_a_rejected_review_rejects_the_order_and_takes_no_money(margaret, reviewer, drained):
    saga = order(margaret, "2500.00")
    engine.receive_signal(saga.pk, demo_sagas.WAREHOUSE_SIGNAL, {}, actor="test")
    drained()
    task = answers.tasks_for(reviewer).get()
    answers.task_reject(task_id=task.pk, user=reviewer, reason="the address looks made up")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    assert saga.failure["code"] == "TASK_REJECTED"
    assert Order.objects.get(saga_id=saga.pk).state == "CANCELLED"
    assert customer_available_credit(customer_id=margaret.pk) == margaret.credit_limit
    assert saga.events.filter(type=EventType.TASK_REJECTED, actor="user:rita").exists()


def test_the_fraud_desk_refuses_a_suspicious_order_through_its_token(margaret, drained):
    saga = order(margaret, "60000.00")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    assert saga.failure["code"] == "FRAUD_SUSPECTED"
    assert Order.objects.get(saga_id=saga.pk).state == "CANCELLED"
