"""POST /api/v1/orders/ and GET /api/v1/orders/{id}/, through HTTP with in-process workers.

The eventuate-style scenarios: an order under the credit limit is approved, one over it is
rejected with INSUFFICIENT_CREDIT, one for an unknown customer with UNKNOWN_CUSTOMER, and the
customer's order history lists them.
"""

from __future__ import annotations

import pytest
from django.core import mail

from bpm.models import SagaInstance, SagaStatus
from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = "/api/v1/orders/"
CUSTOMERS = "/api/v1/customers/"


def open_account(api, credit_limit: str = "15.00", **extra) -> int:
    response = api.post(CUSTOMERS, {"name": "Ada", "credit_limit": credit_limit, **extra})
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def place(api, customer_id: int, total: str = "12.34", **extra):
    body = {
        "customer_id": customer_id,
        "products": [1, 2, 3],
        "total": total,
        "payment_method": "credit_card",
        **extra,
    }
    return api.post(ORDERS, body)


def outcome(api, order_id: int) -> tuple[str, str | None]:
    order = api.get(f"{ORDERS}{order_id}/").json()
    return order["state"], order["rejection_reason"]


def test_placing_an_order_creates_it_pending_with_its_place_order_saga(shop):
    customer_id = open_account(shop)
    response = place(shop, customer_id)
    assert response.status_code == 201, response.json()
    order = Order.objects.get()
    saga = SagaInstance.objects.get()
    assert response.json() == {
        "id": order.pk,
        "customer_id": customer_id,
        "products": [1, 2, 3],
        "total": "12.34",
        "state": "PENDING",
        "rejection_reason": None,
        "saga": str(saga.id),
        "created_at": response.json()["created_at"],
        "updated_at": response.json()["updated_at"],
    }
    assert response["Location"] == f"http://testserver{ORDERS}{order.pk}/"
    assert saga.definition_name == "place_order"
    assert saga.input == {
        "customer_id": customer_id,
        "products": [1, 2, 3],
        "total": "12.34",
        "payment_method": "credit_card",
    }
    assert saga.events.first().actor == "user:shop"


def test_an_order_under_the_credit_limit_is_approved(shop, drained):
    customer_id = open_account(shop, email="ada@example.com")
    order_id = place(shop, customer_id, total="12.34").json()["id"]
    drained()
    assert outcome(shop, order_id) == ("APPROVED", None)
    assert shop.get(f"{CUSTOMERS}{customer_id}/").json()["available_credit"] == "2.66"
    assert [message.to for message in mail.outbox] == [["ada@example.com"]]


def test_an_order_over_the_credit_limit_is_rejected_for_insufficient_credit(shop, drained):
    customer_id = open_account(shop)
    order_id = place(shop, customer_id, total="15.01").json()["id"]
    drained()
    assert outcome(shop, order_id) == ("REJECTED", "INSUFFICIENT_CREDIT")
    assert shop.get(f"{CUSTOMERS}{customer_id}/").json()["available_credit"] == "15.00"


def test_an_order_for_an_unknown_customer_is_rejected(shop, drained):
    order_id = place(shop, 4242).json()["id"]
    drained()
    assert outcome(shop, order_id) == ("REJECTED", "UNKNOWN_CUSTOMER")


def test_a_declined_card_rejects_the_order(shop, drained):
    customer_id = open_account(shop)
    order_id = place(shop, customer_id, payment_method="card_declined").json()["id"]
    drained()
    assert outcome(shop, order_id) == ("REJECTED", "PAYMENT_DECLINED")


def test_a_customer_without_an_email_address_still_gets_the_order_approved(shop, drained):
    customer_id = open_account(shop)
    order = place(shop, customer_id).json()
    drained()
    assert outcome(shop, order["id"]) == ("APPROVED", None)
    assert SagaInstance.objects.get(pk=order["saga"]).status == SagaStatus.COMPLETED
    assert not mail.outbox


def test_the_customers_order_history_lists_each_order_with_its_outcome(shop, drained):
    customer_id = open_account(shop)
    approved = place(shop, customer_id, total="10.00").json()["id"]
    rejected = place(shop, customer_id, total="10.00").json()["id"]
    drained()
    history = shop.get(f"{CUSTOMERS}{customer_id}/orders/").json()["results"]
    assert {order["id"]: order["state"] for order in history} == {
        approved: "APPROVED",
        rejected: "REJECTED",
    }
    assert next(o for o in history if o["id"] == rejected)["rejection_reason"] == (
        "INSUFFICIENT_CREDIT"
    )


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"customer_id": "1"}, "customer_id"),
        ({"customer_id": 0}, "customer_id"),
        ({"customer_id": 2**64}, "customer_id"),
        ({"customer_id": True}, "customer_id"),
        ({"products": []}, "products"),
        ({"products": "1,2"}, "products"),
        ({"products": [1, "2"]}, "products[1]"),
        ({"products": [1, -2]}, "products[1]"),
        ({"total": "0.00"}, "total"),
        ({"total": "12.345"}, "total"),
        ({"total": 12.34}, "total"),
        ({"total": "99999999999"}, "total"),
        ({"payment_method": ""}, "payment_method"),
        ({"payment_method": "x" * 33}, "payment_method"),
        ({"notification": {"message": "hi"}}, "notification"),
        ({"email": "someone@example.com"}, "email"),
        ({"coupon": "FREE"}, "coupon"),
    ],
)
def test_bad_order_input_is_a_400_naming_the_path_and_starts_nothing(shop, change, path):
    body = {"customer_id": 1, "products": [1], "total": "1.00", "payment_method": "credit_card"}
    response = shop.post(ORDERS, {**body, **change})
    assert response.status_code == 400
    assert path in response.json()["details"], response.json()
    assert not Order.objects.exists() and not SagaInstance.objects.exists()


def test_a_whole_number_written_as_a_float_is_an_integer_as_json_schema_says(shop):
    body = {"customer_id": 7.0, "products": [1.0], "total": "1.00", "payment_method": "card"}
    response = shop.post(ORDERS, body)
    assert response.status_code == 201
    assert (response.json()["customer_id"], response.json()["products"]) == (7, [1])


def test_an_order_is_read_back_and_an_unknown_one_is_a_404(shop):
    order_id = place(shop, 1).json()["id"]
    assert shop.get(f"{ORDERS}{order_id}/").json()["state"] == "PENDING"
    assert shop.get(f"{ORDERS}{order_id + 1}/").status_code == 404
    assert shop.get(f"{ORDERS}x/").status_code == 404


def test_a_viewer_may_read_orders_but_not_place_them(shop, viewer):
    order_id = place(shop, 1).json()["id"]
    assert viewer.get(f"{ORDERS}{order_id}/").status_code == 200
    response = place(viewer, 1)
    assert response.status_code == 403
    assert Order.objects.count() == 1
