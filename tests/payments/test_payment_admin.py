"""The payments admin: customers are editable; payments and the gateway's ledger are not."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from factories import CustomerFactory, PaymentFactory

from payments import gateway

pytestmark = pytest.mark.django_db


def test_the_customer_list_shows_reserved_and_available_credit(admin_client):
    customer = CustomerFactory(credit_limit=Decimal("100.00"))
    PaymentFactory(customer=customer, amount=Decimal("30.00"))
    response = admin_client.get(reverse("admin:payments_customer_changelist"))
    assert response.status_code == 200
    [row] = response.context["cl"].result_list
    admin = response.context["cl"].model_admin
    assert (admin.reserved(row), admin.available_credit(row)) == (
        Decimal("30.00"),
        Decimal("70.00"),
    )


@pytest.mark.parametrize(
    "name", ["payments_customer", "payments_payment", "payments_gatewaycharge"]
)
@pytest.mark.parametrize("query", ["", "?q=ada", "?q=12"])
def test_the_lists_render_with_a_search(admin_client, name, query):
    PaymentFactory(customer__email="ada@example.com")
    gateway.charge(idempotency_key="k", method="credit_card", amount=Decimal("1.00"))
    assert admin_client.get(reverse(f"admin:{name}_changelist") + query).status_code == 200


def test_payments_cannot_be_added_or_changed(admin_client):
    payment = PaymentFactory()
    response = admin_client.get(reverse("admin:payments_payment_change", args=[payment.pk]))
    assert not response.context["has_change_permission"]
    assert admin_client.get(reverse("admin:payments_payment_add")).status_code == 403
