"""The smaller input checks: money matched whole, list parameters known, emails unique in any
case, names that show something, and Idempotency-Key bodies compared as JSON values."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bpm.api.idempotency import fingerprint
from orders.models import Order
from payments.models import Customer
from payments.services import customer_create

pytestmark = pytest.mark.django_db

API = "/api/v1"


def token_client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@pytest.fixture
def shop() -> APIClient:
    return token_client(UserFactory(username="shop", groups=["clients"], is_staff=False))


@pytest.fixture
def viewer() -> APIClient:
    return token_client(UserFactory(username="vera", groups=["viewers"]))


def open_account(api: APIClient, **fields):
    return api.post(f"{API}/customers/", {"name": "Ada", "credit_limit": "10.00", **fields})


# --- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["12.34\n", "12\n", "1.00\r\n", "12.34 "])
def test_money_with_a_trailing_newline_is_refused(shop, amount):
    response = open_account(shop, credit_limit=amount)
    assert response.status_code == 400
    assert "credit_limit" in response.json()["details"]
    order = {"customer_id": 1, "products": [1], "total": amount, "payment_method": "credit_card"}
    response = shop.post(f"{API}/orders/", order)
    assert response.status_code == 400
    assert "total" in response.json()["details"]
    assert not Customer.objects.exists() and not Order.objects.exists()


# --- list parameters -------------------------------------------------------------------------


def test_an_unknown_query_parameter_on_the_saga_list_is_a_400_naming_it(viewer):
    response = viewer.get(f"{API}/sagas/", {"statuss": "STUCK", "status": "STUCK", "q": "x"})
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"q", "statuss"}
    assert "status" in response.json()["details"]["statuss"][0]


def test_an_unknown_query_parameter_on_a_customers_orders_is_a_400(shop):
    customer = open_account(shop).json()["id"]
    response = shop.get(f"{API}/customers/{customer}/orders/", {"state": "APPROVED"})
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["state"]


def test_the_known_list_parameters_are_still_taken(viewer):
    response = viewer.get(f"{API}/sagas/", {"page_size": "5", "status": "STUCK", "format": "json"})
    assert response.status_code == 200


# --- customer emails -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["ADA@example.com", "Ada@Example.COM", " ada@EXAMPLE.com "])
def test_an_email_taken_in_another_case_is_a_409(shop, variant):
    assert open_account(shop, email="ada@example.com").status_code == 201
    response = open_account(shop, email=variant.strip())
    assert response.status_code == 409
    assert "already exists" in response.json()["details"]["email"][0]
    assert Customer.objects.count() == 1


def test_the_database_refuses_a_case_variant_that_skips_the_service():
    customer_create(name="Ada", credit_limit="1", email="ada@example.com")
    with pytest.raises(ValidationError, match="already exists"):
        customer_create(name="Ada", credit_limit="1", email="ADA@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(name="Ada", credit_limit=1, email="Ada@Example.com")


def test_an_email_is_stored_with_its_domain_in_lower_case(shop):
    response = open_account(shop, email="Ada.Lovelace@Example.COM")
    assert response.json()["email"] == "Ada.Lovelace@example.com"


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["\u200b", "\u200b\u200c\u200d\u2060\ufeff", "\u3164", "\u00ad\u034f", "\u2800\u200b"],
    ids=["zero-width space", "zero-width mix", "hangul filler", "soft hyphen", "braille blank"],
)
def test_a_name_with_no_visible_character_is_refused(shop, name):
    response = open_account(shop, name=name)
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["name"]
    assert not Customer.objects.exists()


@pytest.mark.parametrize("name", ["Ada\u200b", "José", "李", "Zoë\u0301"])
def test_a_name_with_a_visible_character_is_taken(shop, name):
    assert open_account(shop, name=name).status_code == 201


# --- Idempotency-Key -------------------------------------------------------------------------


def test_a_replay_with_the_same_number_spelt_otherwise_gets_the_first_answer(shop):
    order = {"customer_id": 5, "products": [1, 2], "total": "1.00", "payment_method": "card"}
    first = shop.post(f"{API}/orders/", order, HTTP_IDEMPOTENCY_KEY="k-1")
    again = shop.post(
        f"{API}/orders/",
        {**order, "customer_id": 5.0, "products": [1.0, 2e0]},
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"a": 5}, {"a": "5"}),
        ({"a": 1}, {"a": True}),
        ({"a": 0}, {"a": None}),
        ({"a": 5}, {"a": 6}),
    ],
)
def test_bodies_that_differ_as_json_values_still_differ(one, other):
    assert fingerprint("POST", "/x", one) != fingerprint("POST", "/x", other)


def test_bodies_equal_as_json_values_have_one_fingerprint():
    assert fingerprint("POST", "/x", {"a": [5, 0.5, 100], "b": 2**70}) == fingerprint(
        "POST", "/x", {"b": 2**70, "a": [5.0, 5e-1, 1e2]}
    )
