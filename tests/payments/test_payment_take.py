"""Taking a payment: exactly once per idempotency key, within the customer's credit."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from factories import CustomerFactory, PaymentFactory

from payments import gateway, services
from payments.errors import PaymentConflict, PaymentRefused
from payments.models import ChargeStatus, GatewayCharge, Payment, PaymentStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada():
    return CustomerFactory(name="Ada", email="ada@example.com", credit_limit=Decimal("50.00"))


def take(customer_id: int, amount: str = "20.00", method: str = "credit_card", key: str = "k1"):
    return services.payment_take(
        customer_id=customer_id,
        order_id=7,
        amount=amount,
        method=method,
        idempotency_key=key,
    )


def test_it_charges_the_card_and_reserves_the_amount(ada):
    payment = take(ada.pk)
    payment.refresh_from_db()
    assert (payment.customer, payment.order_id, payment.amount) == (ada, 7, Decimal("20.00"))
    assert payment.status == PaymentStatus.RESERVED
    assert payment.gateway_reference == GatewayCharge.objects.get(idempotency_key="k1").reference
    assert services.customer_available_credit(customer_id=ada.pk) == Decimal("30.00")


def test_a_repeated_key_returns_the_same_payment_without_calling_the_gateway(ada):
    first = take(ada.pk)
    again = take(ada.pk)
    assert again.pk == first.pk
    assert Payment.objects.count() == 1
    assert GatewayCharge.objects.get(idempotency_key="k1").attempts == 1


def test_it_refuses_a_payment_over_the_credit_limit_without_charging(ada):
    PaymentFactory(customer=ada, amount=Decimal("40.00"))
    with pytest.raises(PaymentRefused) as caught:
        take(ada.pk, amount="10.01")
    assert caught.value.code == "INSUFFICIENT_CREDIT"
    assert "10.00 of credit available, less than 10.01" in caught.value.message
    # Never asked to charge; the key is voided there, so an attempt in flight cannot charge.
    charge = GatewayCharge.objects.get()
    assert (charge.status, charge.attempts) == (ChargeStatus.VOIDED, 0)


def test_it_takes_a_payment_of_exactly_the_available_credit(ada):
    assert take(ada.pk, amount="50.00").amount == Decimal("50.00")


def test_refunded_payments_free_their_credit(ada):
    PaymentFactory(customer=ada, amount=Decimal("50.00"), status=PaymentStatus.REFUNDED)
    assert take(ada.pk, amount="50.00").status == PaymentStatus.RESERVED


def test_it_refuses_a_customer_it_does_not_know():
    with pytest.raises(PaymentRefused) as caught:
        take(404)
    assert (caught.value.code, caught.value.message) == (
        "UNKNOWN_CUSTOMER",
        "no customer with id 404",
    )


def test_a_declined_card_is_a_refusal_and_takes_nothing(ada):
    with pytest.raises(PaymentRefused) as caught:
        take(ada.pk, method="card_declined")
    assert caught.value.code == "PAYMENT_DECLINED"
    assert not Payment.objects.exists()


def test_a_flaky_gateway_is_a_fault_until_it_answers_and_then_charges_once(ada):
    for _ in range(2):
        with pytest.raises(gateway.GatewayUnavailable):
            take(ada.pk, method="card_flaky")
    assert not Payment.objects.exists()
    payment = take(ada.pk, method="card_flaky")
    assert Payment.objects.get() == payment
    assert GatewayCharge.objects.get().attempts == 3


def test_a_gateway_that_is_down_is_a_fault_and_takes_nothing(ada):
    with pytest.raises(gateway.GatewayUnavailable):
        take(ada.pk, method="card_down")
    assert not Payment.objects.exists()


def test_it_checks_the_credit_again_when_recording_and_refunds_the_charge(ada, monkeypatch):
    real_charge = gateway.charge

    def charge_while_another_payment_lands(**kwargs):
        # Another order reserves most of the credit while the gateway is working on this one.
        PaymentFactory(customer=ada, amount=Decimal("40.00"))
        return real_charge(**kwargs)

    monkeypatch.setattr(gateway, "charge", charge_while_another_payment_lands)
    with pytest.raises(PaymentRefused) as caught:
        take(ada.pk, amount="20.00")
    assert caught.value.code == "INSUFFICIENT_CREDIT"
    assert not Payment.objects.filter(idempotency_key="k1").exists()
    assert GatewayCharge.objects.get(idempotency_key="k1").status == ChargeStatus.REFUNDED


def test_a_key_reused_for_another_payment_is_refused(ada):
    take(ada.pk, amount="20.00")
    with pytest.raises(PaymentConflict, match="already took payment"):
        take(ada.pk, amount="25.00")


@pytest.mark.parametrize("amount", ["0", "-5.00", "1.001", "abc"])
def test_it_refuses_an_amount_that_is_not_positive_money(ada, amount):
    with pytest.raises(ValidationError):
        take(ada.pk, amount=amount)
    assert not GatewayCharge.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_step_take_one_payment(settings):
    settings.PAYMENTS_GATEWAY_SLOW_SECONDS = 0.2
    customer = CustomerFactory(credit_limit=Decimal("50.00"))
    results: list[object] = []

    def deliver() -> None:
        try:
            results.append(take(customer.pk, amount="30.00", method="card_slow").pk)
        except Exception as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    payment = Payment.objects.get()
    assert results == [payment.pk, payment.pk]
    assert services.customer_available_credit(customer_id=customer.pk) == Decimal("20.00")
    assert GatewayCharge.objects.get().status == ChargeStatus.CHARGED


@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_never_overdraw_the_credit_nor_keep_an_unrecorded_charge(settings):
    settings.PAYMENTS_GATEWAY_SLOW_SECONDS = 0.2
    customer = CustomerFactory(credit_limit=Decimal("50.00"))
    results: list[object] = []

    def pay(key: str) -> None:
        try:
            results.append(take(customer.pk, amount="30.00", method="card_slow", key=key))
        except PaymentRefused as refusal:
            results.append(refusal.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(key,)) for key in ("k1", "k2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    payment = Payment.objects.get()
    assert sorted(results, key=str) == ["INSUFFICIENT_CREDIT", payment]
    charged = GatewayCharge.objects.filter(status=ChargeStatus.CHARGED)
    assert [charge.idempotency_key for charge in charged] == [payment.idempotency_key]
    assert services.customer_available_credit(customer_id=customer.pk) == Decimal("20.00")
