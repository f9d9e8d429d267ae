"""POST /api/v1/customers/, GET /api/v1/customers/{id}/ and the customer's order history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from factories import CustomerFactory, OrderFactory, PaymentFactory

from payments.models import Customer

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/"


def test_a_client_opens_an_account_and_gets_its_credit(shop):
    response = shop.post(URL, {"name": "Ada", "credit_limit": "15.00"})
    assert response.status_code == 201, response.json()
    body = response.json()
    customer = Customer.objects.get()
    assert body == {
        "id": customer.pk,
        "name": "Ada",
        "email": None,
        "credit_limit": "15.00",
        "available_credit": "15.00",
        "created_at": body["created_at"],
    }
    assert body["created_at"].endswith("Z")
    assert response["Location"] == f"http://testserver{URL}{customer.pk}/"


def test_an_email_address_may_be_given(shop):
    response = shop.post(URL, {"name": "Ada", "credit_limit": "1", "email": "ada@example.com"})
    assert (response.status_code, response.json()["email"]) == (201, "ada@example.com")
    assert response.json()["credit_limit"] == "1.00"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"credit_limit": "15.00"}, "name"),
        ({"name": "Ada"}, "credit_limit"),
        ({"name": "", "credit_limit": "1"}, "name"),
        ({"name": " \t\u3000", "credit_limit": "1"}, "name"),
        ({"name": "Ada", "credit_limit": 15}, "credit_limit"),
        ({"name": "Ada", "credit_limit": 15.5}, "credit_limit"),
        ({"name": "Ada", "credit_limit": "-1"}, "credit_limit"),
        ({"name": "Ada", "credit_limit": "1.005"}, "credit_limit"),
        ({"name": "Ada", "credit_limit": "1" * 400}, "credit_limit"),
        ({"name": "Ada", "credit_limit": "NaN"}, "credit_limit"),
        ({"name": "Ada", "credit_limit": "1e5"}, "credit_limit"),
        ({"name": 7, "credit_limit": "1"}, "name"),
        ({"name": "A\x00da", "credit_limit": "1"}, "name"),
        ({"name": "x" * 201, "credit_limit": "1"}, "name"),
        ({"name": "Ada", "credit_limit": "1", "email": "nope"}, "email"),
        ({"name": "Ada", "credit_limit": "1", "vip": True}, "vip"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(shop, body, path):
    response = shop.post(URL, body)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "invalid"
    assert list(error["details"]) == [path]
    assert error["message"].startswith(f"{path}: ")
    assert not Customer.objects.exists()


def test_a_second_account_with_the_same_email_is_a_conflict(shop):
    CustomerFactory(email="ada@example.com")
    response = shop.post(URL, {"name": "Ada", "credit_limit": "1", "email": "ada@example.com"})
    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    assert "already exists" in response.json()["details"]["email"][0]


def test_a_customer_is_read_with_the_credit_still_available(viewer):
    customer = CustomerFactory(credit_limit=Decimal("100.00"))
    PaymentFactory(customer=customer, amount=Decimal("30.50"))
    response = viewer.get(f"{URL}{customer.pk}/")
    assert response.status_code == 200
    assert (response.json()["credit_limit"], response.json()["available_credit"]) == (
        "100.00",
        "69.50",
    )


@pytest.mark.parametrize("customer_id", ["999", "0", "-1", "abc", "1.5", "9" * 30, "%00"])
def test_an_unknown_or_malformed_customer_id_is_a_404(viewer, customer_id):
    response = viewer.get(f"{URL}{customer_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_customers_orders_are_listed_newest_first_with_their_states(shop):
    customer = CustomerFactory(owner=shop.user)
    first = OrderFactory(customer_id=customer.pk, owner=shop.user)
    second = OrderFactory(customer_id=customer.pk, owner=shop.user)
    second.reject(reason="INSUFFICIENT_CREDIT")
    second.save()
    OrderFactory(customer_id=customer.pk + 1, owner=shop.user)
    response = shop.get(f"{URL}{customer.pk}/orders/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(o["id"], o["state"], o["rejection_reason"]) for o in results] == [
        (second.pk, "REJECTED", "INSUFFICIENT_CREDIT"),
        (first.pk, "PENDING", None),
    ]


def test_the_order_history_of_an_unknown_customer_is_a_404(shop):
    assert shop.get(f"{URL}4242/orders/").status_code == 404


def test_the_order_history_costs_the_same_queries_for_many_orders(
    shop, django_assert_max_num_queries
):
    customer = CustomerFactory(owner=shop.user)
    OrderFactory.create_batch(30, customer_id=customer.pk, owner=shop.user)
    # auth (token + user), permissions (user perms + group perms), customer, orders page
    with django_assert_max_num_queries(6):
        response = shop.get(f"{URL}{customer.pk}/orders/?page_size=25")
    assert len(response.json()["results"]) == 25
    assert response.json()["next"]


def test_a_viewer_may_not_open_an_account(viewer):
    response = viewer.post(URL, {"name": "Ada", "credit_limit": "1"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Customer.objects.exists()
