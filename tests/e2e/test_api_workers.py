"""The REST API with real rqworker processes: orders placed over HTTP are decided by the workers."""

from __future__ import annotations

import pytest
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop() -> APIClient:
    user = UserFactory(username="shop", groups=["clients"], is_staff=False)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def test_orders_placed_through_the_api_are_approved_or_rejected_by_real_workers(
    processes, shop, wait_for
):
    processes.worker("worker-1")
    processes.worker("worker-2")
    customer = shop.post("/api/v1/customers/", {"name": "Ada", "credit_limit": "15.00"}).json()

    def place(customer_id: int, total: str) -> int:
        body = {
            "customer_id": customer_id,
            "products": [1, 2, 3],
            "total": total,
            "payment_method": "credit_card",
        }
        response = shop.post("/api/v1/orders/", body, HTTP_IDEMPOTENCY_KEY=f"{customer_id}-{total}")
        assert response.status_code == 201, response.json()
        return response.json()["id"]

    orders = {
        place(customer["id"], "12.34"): ("APPROVED", None),
        place(customer["id"], "15.01"): ("REJECTED", "INSUFFICIENT_CREDIT"),
        place(customer["id"] + 1000, "1.00"): ("REJECTED", "UNKNOWN_CUSTOMER"),
    }

    def outcome(order_id: int) -> tuple[str, str | None]:
        order = shop.get(f"/api/v1/orders/{order_id}/").json()
        return order["state"], order["rejection_reason"]

    wait_for(
        lambda: all(outcome(order_id)[0] != "PENDING" for order_id in orders),
        message="every order to be decided",
    )
    assert {order_id: outcome(order_id) for order_id in orders} == orders
    history = shop.get(f"/api/v1/customers/{customer['id']}/orders/").json()["results"]
    assert sorted(order["state"] for order in history) == ["APPROVED", "REJECTED"]
    assert shop.get(f"/api/v1/customers/{customer['id']}/").json()["available_credit"] == "2.66"
    sagas = shop.get("/api/v1/sagas/", {"definition": "place_order"}).json()["results"]
    assert sorted(saga["status"] for saga in sagas) == ["COMPENSATED", "COMPENSATED", "COMPLETED"]
