"""Two clients on one API: each sees and spends only what it created; viewers see everything.

Alice and Bob are both shops with a client's token. Each opens a customer, places an order and
starts a saga through the API, and then tries every endpoint on the other's ids: a read is a 404
worded as for an id that names nothing, a filter counts nothing of the other's, and an order or a
saga for the other's customer is refused exactly as one for a customer that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group
from factories import CustomerFactory, OrderFactory, UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from testkit import fresh

from bpm import services
from bpm.models import SagaInstance, SagaStatus
from bpm.permissions import CLIENTS
from orders.models import Order
from payments.models import Customer, Payment

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1"
NOBODY = 987_654_321
NO_SAGA = "00000000-0000-4000-8000-000000000000"


def token_client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@dataclass
class Shop:
    """A client's token and what it created through the API."""

    api: APIClient
    user: Any
    customer: int
    order: int
    order_saga: str
    saga: str


def open_shop(name: str) -> Shop:
    user = UserFactory(username=name, groups=[CLIENTS], is_staff=False)
    api = token_client(user)
    customer = api.post(
        f"{API}/customers/",
        {"name": name.title(), "credit_limit": "100.00", "email": f"{name}@example.com"},
    ).json()["id"]
    order = place(api, customer).json()
    saga = api.post(
        f"{API}/sagas/",
        {"definition": "place_order", "input": order_input(customer), "business_key": name},
    ).json()["id"]
    return Shop(api, user, customer, order["id"], order["saga"], saga)


def order_input(customer_id: int, total: str = "10.00") -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "products": [1],
        "total": total,
        "payment_method": "credit_card",
    }


def place(api: APIClient, customer_id: int, total: str = "10.00"):
    return api.post(f"{API}/orders/", order_input(customer_id, total))


@pytest.fixture
def alice() -> Shop:
    return open_shop("alice")


@pytest.fixture
def bob() -> Shop:
    return open_shop("bob")


@pytest.fixture
def viewer() -> APIClient:
    return token_client(UserFactory(username="vera", groups=["viewers"]))


def reads_of(shop: Shop) -> dict[str, str]:
    """Return every GET that names one of the shop's rows, by what it reads."""
    return {
        "customer": f"{API}/customers/{shop.customer}/",
        "customer orders": f"{API}/customers/{shop.customer}/orders/",
        "order": f"{API}/orders/{shop.order}/",
        "saga": f"{API}/sagas/{shop.saga}/",
        "order's saga": f"{API}/sagas/{shop.order_saga}/",
    }


def test_a_client_reads_everything_it_created(alice):
    for what, url in reads_of(alice).items():
        assert alice.api.get(url).status_code == 200, what


def test_another_clients_rows_are_404s_worded_as_for_ids_that_name_nothing(alice, bob):
    missing = {
        "customer": f"{API}/customers/{NOBODY}/",
        "customer orders": f"{API}/customers/{NOBODY}/orders/",
        "order": f"{API}/orders/{NOBODY}/",
        "saga": f"{API}/sagas/{NO_SAGA}/",
        "order's saga": f"{API}/sagas/{NO_SAGA}/",
    }
    for what, url in reads_of(alice).items():
        theirs = bob.api.get(url)
        nothing = bob.api.get(missing[what])
        assert (theirs.status_code, nothing.status_code) == (404, 404), what
        assert theirs.json()["code"] == nothing.json()["code"] == "not_found"
        # The same words, but for the id itself.
        own_id = url.rstrip("/").split("/")[-2 if what == "customer orders" else -1]
        missing_id = missing[what].rstrip("/").split("/")[-2 if what == "customer orders" else -1]
        assert theirs.json()["message"].replace(own_id, "ID") == nothing.json()["message"].replace(
            missing_id, "ID"
        )


def test_the_saga_list_and_its_filters_count_only_the_clients_own(alice, bob):
    def ids(api: APIClient, **filters: str) -> set[str]:
        return {saga["id"] for saga in api.get(f"{API}/sagas/", filters).json()["results"]}

    assert ids(bob.api) == {bob.saga, bob.order_saga}
    assert ids(bob.api, business_key="alice") == set()
    assert ids(bob.api, definition="place_order") == {bob.saga, bob.order_saga}
    assert ids(bob.api, status=SagaStatus.RUNNING) == {bob.saga, bob.order_saga}
    assert ids(alice.api, business_key="alice") == {alice.saga}


def test_viewers_and_operators_see_every_clients_rows(alice, bob, viewer):
    operator = token_client(UserFactory(username="olga", groups=["operators"]))
    for reader in (viewer, operator):
        for shop in (alice, bob):
            for what, url in reads_of(shop).items():
                assert reader.get(url).status_code == 200, what
        listed = {saga["id"] for saga in reader.get(f"{API}/sagas/").json()["results"]}
        assert {alice.saga, alice.order_saga, bob.saga, bob.order_saga} <= listed


def test_the_timeline_and_the_actions_are_refused_to_a_client_whoever_owns_the_saga(alice, bob):
    for saga in (bob.saga, alice.saga, NO_SAGA):
        assert bob.api.get(f"{API}/sagas/{saga}/events/").status_code == 403
        for action in ("retry", "skip", "compensate", "abort"):
            response = bob.api.post(f"{API}/sagas/{saga}/{action}/", {"reason": "mine now"})
            assert response.status_code == 403, (saga, action)


def test_an_order_for_another_clients_customer_is_refused_as_for_a_customer_that_does_not_exist(
    alice, bob, drained
):
    mallory = place(bob.api, alice.customer, total="90.00")
    nobody = place(bob.api, NOBODY, total="90.00")
    assert (mallory.status_code, nobody.status_code) == (201, 201)
    drained()
    answers = [bob.api.get(f"{API}/orders/{r.json()['id']}/").json() for r in (mallory, nobody)]
    assert [(o["state"], o["rejection_reason"]) for o in answers] == [
        ("REJECTED", "UNKNOWN_CUSTOMER"),
        ("REJECTED", "UNKNOWN_CUSTOMER"),
    ]
    sagas = [bob.api.get(f"{API}/sagas/{o['saga']}/").json() for o in answers]
    assert sagas[0]["failure"]["message"] == sagas[1]["failure"]["message"].replace(
        str(NOBODY), str(alice.customer)
    )
    # Alice's customer paid for nothing but her own order, and her history lists only hers.
    assert not Payment.objects.filter(customer_id=alice.customer, order_id=answers[0]["id"])
    history = alice.api.get(f"{API}/customers/{alice.customer}/orders/").json()["results"]
    listed = {order["id"] for order in history}
    assert listed == set(Order.objects.filter(owner=alice.user).values_list("pk", flat=True))
    assert answers[0]["id"] not in listed and alice.order in listed


def test_a_saga_started_on_another_clients_customer_takes_no_payment(alice, bob, drained):
    started = bob.api.post(
        f"{API}/sagas/", {"definition": "place_order", "input": order_input(alice.customer)}
    )
    assert started.status_code == 201
    drained()
    saga = fresh(SagaInstance.objects.get(pk=started.json()["id"]))
    assert saga.status == SagaStatus.COMPENSATED
    assert saga.failure["code"] == "UNKNOWN_CUSTOMER"
    assert Order.objects.get(saga_id=saga.id).owner == bob.user
    assert not Payment.objects.filter(order_id=Order.objects.get(saga_id=saga.id).pk).exists()


def test_an_operator_may_start_a_saga_on_any_customer(alice, drained):
    operator = UserFactory(username="olga", groups=["operators"])
    saga = services.saga_start(
        definition="place_order", input=order_input(alice.customer), user=operator, owner=operator
    )
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert Payment.objects.filter(customer_id=alice.customer).count() == 3


def test_what_a_client_creates_is_owned_by_it_and_what_code_creates_by_nobody(alice):
    assert Customer.objects.get(pk=alice.customer).owner == alice.user
    assert Order.objects.get(pk=alice.order).owner == alice.user
    assert SagaInstance.objects.get(pk=alice.saga).owner == alice.user
    assert SagaInstance.objects.get(pk=alice.order_saga).owner == alice.user
    made_by_code = CustomerFactory()
    order = OrderFactory(customer_id=made_by_code.pk)
    for url in (f"{API}/customers/{made_by_code.pk}/", f"{API}/orders/{order.pk}/"):
        assert alice.api.get(url).status_code == 404


def test_the_clients_group_holds_no_permission_that_shows_every_row():
    group = Group.objects.get(name=CLIENTS)
    held = {p.codename for p in group.permissions.all()}
    assert not {"view_customer", "view_order", "view_sagainstance"} & held
    assert {"add_customer", "add_order", "start_saga", "view_sagadefinition"} <= held


def test_an_idempotency_key_is_the_clients_own(alice, bob):
    key = str(uuid.uuid4())
    first = alice.api.post(
        f"{API}/orders/", order_input(alice.customer), HTTP_IDEMPOTENCY_KEY=key
    ).json()
    second = bob.api.post(f"{API}/orders/", order_input(bob.customer), HTTP_IDEMPOTENCY_KEY=key)
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]
    assert bob.api.get(f"{API}/orders/{first['id']}/").status_code == 404
