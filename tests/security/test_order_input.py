"""An order's input is as strict as the steps that store it, on /orders/ and /sagas/ alike."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from factories import CustomerFactory, UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from testkit import fresh

from bpm.models import SagaDefinition, SagaInstance, SagaStatus
from orders.models import Order
from payments.models import Payment

VALID = {"products": [1, 2], "total": "12.50", "payment_method": "credit_card"}

# (field, value): each one a step of place_order could not store or process.
HOSTILE: list[tuple[str, Any]] = [
    ("customer_id", 2**70),
    ("customer_id", 2**63),
    ("customer_id", 0),
    ("customer_id", -1),
    ("customer_id", 5.5),
    ("customer_id", "5"),
    ("customer_id", True),
    ("products", [1, 2**70]),
    ("products", []),
    ("products", [1.5]),
    ("products", list(range(1, 1002))),
    ("total", "0.00"),
    ("total", "-1.00"),
    ("total", "12.345"),
    ("total", "1e3"),
    ("total", "12345678901.00"),
    ("total", 12.5),
    ("payment_method", "x" * 40),
    ("payment_method", "x" * 33),
    ("payment_method", ""),
    ("payment_method", "   "),
    # No mail relay: the confirmation goes to the customer's address, in the operators' words.
    ("email", "ada@example.com"),
    ("notification", {"message": "hello"}),
    ("coupon", "FREE"),
]
IDS = [f"{field}={str(value)[:20]}" for field, value in HOSTILE]


@pytest.fixture
def shop() -> APIClient:
    user = UserFactory(username="shop", groups=["clients"], is_staff=False)
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def order_body(customer_id: Any, **change: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, **VALID, **change}


def placed(shop: APIClient, endpoint: str, body: dict[str, Any]) -> Any:
    if endpoint == "orders":
        return shop.post("/api/v1/orders/", body, format="json")
    return shop.post("/api/v1/sagas/", {"definition": "place_order", "input": body}, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["orders", "sagas"])
@pytest.mark.parametrize(("field", "value"), HOSTILE, ids=IDS)
def test_an_order_its_steps_cannot_store_is_a_400_naming_the_field_on_both_endpoints(
    shop, endpoint, field, value
):
    customer = CustomerFactory()
    response = placed(shop, endpoint, {**order_body(customer.pk), field: value})
    assert response.status_code == 400, response.content
    prefix = field if endpoint == "orders" else f"input.{field}"
    details = response.json()["details"]
    named = [path for path in details if path.startswith(prefix)]
    # A field the schema does not know is named in the message, at the input's own path.
    assert named or (field in ("coupon", "email", "notification") and details), details
    assert not SagaInstance.objects.exists() and not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("endpoint", ["orders", "sagas"])
def test_a_whole_number_written_as_a_float_is_that_integer_on_both_endpoints(
    shop, endpoint, drained
):
    customer = CustomerFactory(
        credit_limit=Decimal("100.00"),
        email="ada@example.com",
        owner=User.objects.get(username="shop"),
    )
    body = order_body(float(customer.pk), products=[1.0, 2])
    response = placed(shop, endpoint, body)
    assert response.status_code == 201, response.content
    drained()
    saga = fresh(SagaInstance.objects.get())
    assert saga.status == SagaStatus.COMPLETED, saga.status
    order = Order.objects.get(saga_id=saga.id)
    assert (order.customer_id, order.product_ids, order.state) == (customer.pk, [1, 2], "APPROVED")


def test_the_place_order_schema_is_the_order_input_schema():
    from orders import order_input
    from orders.sagas import PLACE_ORDER

    assert PLACE_ORDER.input_schema is order_input.SCHEMA


@pytest.mark.django_db
def test_the_synced_place_order_version_has_the_order_input_schema():
    from orders import order_input

    latest = SagaDefinition.objects.filter(name="place_order").order_by("-version").first()
    assert latest is not None and latest.input_schema == order_input.SCHEMA


def test_the_order_input_limits_are_those_of_the_fields_its_steps_fill():
    from orders import order_input

    _, biggest = connection.ops.integer_field_range("PositiveBigIntegerField")
    assert biggest == order_input.MAX_ID
    method = Payment._meta.get_field("method")
    assert method.max_length == order_input.PAYMENT_METHOD_MAX_LENGTH
    total = Order._meta.get_field("total")
    assert total.max_digits - total.decimal_places == order_input.TOTAL_DIGITS
