"""The place_order saga end to end with in-process workers, the fake clock and the real services."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from testkit import fresh

from bpm import services
from bpm.models import EventType, SagaStatus, StuckReason
from orders.models import Order
from payments.models import Payment
from payments.services import customer_create

pytestmark = pytest.mark.django_db(transaction=True)
OPERATOR = "user:olga"


@pytest.fixture
def ada():
    return customer_create(name="Ada", email="ada@example.com", credit_limit=Decimal("50.00"))


def place(customer_id: int, total: str = "12.34", method: str = "credit_card", **extra):
    order_input = {
        "customer_id": customer_id,
        "products": [1, 2],
        "total": total,
        "payment_method": method,
        **extra,
    }
    return services.saga_start(definition="place_order", input=order_input, actor="test")


def order_of(saga) -> Order:
    return Order.objects.get(saga_id=saga.id)


def compensations(saga) -> list[str]:
    succeeded = saga.events.filter(
        type__in=[EventType.STEP_SUCCEEDED, EventType.NULL_COMPENSATION],
        step_run__direction="COMPENSATION",
    ).order_by("at", "id")
    return [
        event.step_run.step.name for event in succeeded if event.type == EventType.STEP_SUCCEEDED
    ]


def test_an_order_under_the_credit_limit_is_approved_paid_once_and_confirmed(ada, drained):
    saga = place(ada.id)
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert order_of(saga).state == "APPROVED"
    assert Payment.objects.filter(customer=ada).count() == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]


def test_an_order_over_the_credit_limit_is_rejected_and_compensated_in_reverse(ada, drained):
    saga = place(ada.id, total="50.01")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    order = order_of(saga)
    assert (order.state, order.rejection_reason) == ("REJECTED", "INSUFFICIENT_CREDIT")
    assert compensations(saga) == ["create_order"]
    assert Payment.objects.count() == 0 and mail.outbox == []


def test_an_order_for_an_unknown_customer_is_rejected(drained):
    saga = place(999_999)
    drained()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    order = order_of(saga)
    assert (order.state, order.rejection_reason) == ("REJECTED", "UNKNOWN_CUSTOMER")


def test_a_declined_card_rejects_the_order(ada, drained):
    saga = place(ada.id, method="card_declined")
    drained()
    assert order_of(saga).rejection_reason == "PAYMENT_DECLINED"


def test_a_transient_gateway_fault_is_retried_with_backoff_and_the_saga_completes(ada, drained):
    saga = place(ada.id, method="card_flaky")
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    failures = saga.events.filter(type=EventType.ATTEMPT_FAILED).order_by("at")
    assert [event.attempt for event in failures] == [1, 2]
    assert all(event.data["type"] and event.data["traceback"] for event in failures)
    retry_at = [event.data["retry_at"] for event in failures]
    assert retry_at == sorted(retry_at)
    assert Payment.objects.count() == 1


def test_a_gateway_that_stays_down_cancels_the_order_with_a_null_refund(ada, drained):
    saga = place(ada.id, method="card_down")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    assert order_of(saga).state == "CANCELLED"
    assert compensations(saga) == ["take_payment", "create_order"]
    assert Payment.objects.count() == 0


@pytest.fixture
def bouncer():
    return customer_create(name="Bo", email="bo@bounce.invalid", credit_limit=Decimal("50.00"))


def test_a_bouncing_confirmation_goes_stuck_and_a_retry_with_a_fixed_address_completes(
    bouncer, drained
):
    saga = place(bouncer.id)
    drained()
    saga = fresh(saga)
    assert (saga.status, saga.stuck_reason) == (SagaStatus.STUCK, StuckReason.RETRIES_EXHAUSTED)
    assert order_of(saga).state == "APPROVED"
    # The recipient is the paying customer's address that take_payment recorded: an operator
    # corrects it there, in the saga's context.
    fixed = {"take_payment": {**saga.context["take_payment"], "customer_email": "bo@example.com"}}
    services.saga_retry(
        saga_id=saga.id, reason="customer gave a new address", actor=OPERATOR, context=fixed
    )
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert Payment.objects.count() == 1
    started = saga.events.filter(type=EventType.STEP_STARTED)
    assert started.filter(step_run__step__name="take_payment").count() == 1
    assert mail.outbox[-1].to == ["bo@example.com"]


def test_a_stuck_confirmation_can_be_skipped_or_the_saga_aborted_and_both_are_audited(
    bouncer, drained
):
    skipped = place(bouncer.id)
    aborted = place(bouncer.id)
    drained()
    services.saga_skip(
        saga_id=skipped.id, reason="phoned the customer", actor=OPERATOR, output={"phoned": True}
    )
    services.saga_abort(saga_id=aborted.id, reason="customer unreachable", actor=OPERATOR)
    assert fresh(skipped).status == SagaStatus.COMPLETED
    assert fresh(aborted).status == SagaStatus.ABORTED
    assert skipped.events.get(type=EventType.OPERATOR_SKIP).actor == OPERATOR
    assert aborted.events.get(type=EventType.OPERATOR_ABORT).message == "customer unreachable"
