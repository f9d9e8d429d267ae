"""A real worker SIGKILLed after the card gateway charged and before the payment was recorded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bpm import services
from bpm.models import EventType, SagaInstance, SagaStatus
from orders.models import Order
from payments.models import ChargeStatus, GatewayCharge, Payment, PaymentStatus
from payments.services import customer_available_credit, customer_create

# A SIGKILL suite: once, on the PostgreSQL pass (pyproject.toml's `slow`).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FINISHED = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.STUCK, SagaStatus.ABORTED)


def place(customer_id: int, total: str) -> SagaInstance:
    order_input = {
        "customer_id": customer_id,
        "products": [1],
        "total": total,
        "payment_method": "credit_card",
    }
    return services.saga_start(definition="place_order", input=order_input, actor="test")


def charge_of(saga: SagaInstance) -> GatewayCharge | None:
    return GatewayCharge.objects.filter(idempotency_key=f"{saga.id}:take_payment:forward").first()


def finished(*sagas: SagaInstance) -> bool:
    ids = [saga.id for saga in sagas]
    return not SagaInstance.objects.filter(id__in=ids).exclude(status__in=FINISHED).exists()


def test_a_worker_killed_between_the_charge_and_its_record_leaves_no_charge_on_a_rejected_order(
    processes, wait_for
):
    ada = customer_create(name="Ada", email="ada@example.com", credit_limit=Decimal("50.00"))
    # This worker's gateway takes a minute to answer once it has charged: time to kill it.
    doomed = processes.worker("doomed", PAYMENTS_GATEWAY_ANSWER_DELAY="60")
    first = place(ada.pk, "30.00")

    def first_is_charged() -> bool:
        charge = charge_of(first)
        return charge is not None and charge.status == ChargeStatus.CHARGED

    wait_for(first_is_charged, timeout=60, message="the first order's card to be charged")
    processes.kill(doomed)  # SIGKILL to the worker and its work horse: nothing is recorded
    assert not Payment.objects.exists()
    # Another order takes the credit while the first one's lease runs out.
    processes.worker("survivor")
    processes.sweeper()
    second = place(ada.pk, "40.00")
    wait_for(lambda: finished(first, second), timeout=120, message="both orders to finish")

    assert SagaInstance.objects.get(pk=second.pk).status == SagaStatus.COMPLETED
    assert SagaInstance.objects.get(pk=first.pk).status == SagaStatus.COMPENSATED
    order = Order.objects.get(saga_id=first.id)
    assert (order.state, order.rejection_reason) == ("REJECTED", "INSUFFICIENT_CREDIT")
    assert first.events.filter(type=EventType.LEASE_EXPIRED).count() == 1
    first_charge = charge_of(first)
    assert first_charge is not None and first_charge.status == ChargeStatus.REFUNDED
    second_charge = charge_of(second)
    assert second_charge is not None and second_charge.status == ChargeStatus.CHARGED
    reserved = Payment.objects.filter(status=PaymentStatus.RESERVED)
    assert [payment.amount for payment in reserved] == [Decimal("40.00")]
    assert customer_available_credit(customer_id=ada.pk) == Decimal("10.00")
