"""A client's token cannot send mail of its own: no recipient and no text come from a request.

The confirmation of an order goes to the paying customer's address on file, in the words of the
operators' templates (templates/notifications/). Before, an order's `email` and
`notification.message` sent any text to any address from DEFAULT_FROM_EMAIL.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bpm import definitions
from bpm.models import SagaInstance
from orders.models import Order
from orders.sagas import PLACE_ORDER

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1"
RELAY = {"email": "victim@example.org", "notification": {"message": "Buy cheap pills at …"}}


@pytest.fixture
def shop() -> APIClient:
    api = APIClient()
    user = UserFactory(username="shop", groups=["clients"], is_staff=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@pytest.fixture
def customer(shop) -> int:
    body = {"name": "Ada", "credit_limit": "50.00", "email": "ada@example.com"}
    return shop.post(f"{API}/customers/", body).json()["id"]


def order(customer_id: int, **extra) -> dict:
    return {
        "customer_id": customer_id,
        "products": [1],
        "total": "1.00",
        "payment_method": "credit_card",
        **extra,
    }


@pytest.mark.parametrize("field", ["email", "notification"])
def test_an_order_naming_a_recipient_or_a_text_is_refused_and_nothing_starts(
    shop, customer, drained, field
):
    response = shop.post(f"{API}/orders/", order(customer, **{field: RELAY[field]}))
    assert response.status_code == 400
    assert field in response.json()["details"]
    drained()
    assert not Order.objects.exists() and not SagaInstance.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize("field", ["email", "notification"])
def test_a_place_order_saga_naming_a_recipient_or_a_text_is_refused(shop, customer, drained, field):
    start = {"definition": "place_order", "input": order(customer, **{field: RELAY[field]})}
    response = shop.post(f"{API}/sagas/", start)
    assert response.status_code == 400
    assert f"input.{field}" in response.json()["message"] or "input" in response.json()["details"]
    drained()
    assert not SagaInstance.objects.exists()
    assert mail.outbox == []


def test_the_confirmation_goes_to_the_customers_address_in_the_operators_words(
    shop, customer, drained
):
    placed = shop.post(f"{API}/orders/", order(customer)).json()
    drained()
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.subject == f"Your order {placed['id']} is confirmed"
    assert message.body.startswith("Hello Ada,")
    assert "charged 1.00" in message.body


def test_operators_change_the_confirmations_words_in_its_template(
    shop, customer, drained, tmp_path, settings
):
    template = tmp_path / "notifications" / "confirmation.txt"
    template.parent.mkdir()
    template.write_text("Dear {{ customer_name }}, order {{ order_id }} is on its way.\n")
    engine = {**settings.TEMPLATES[0], "DIRS": [Path(tmp_path), *settings.TEMPLATES[0]["DIRS"]]}
    settings.TEMPLATES = [engine]
    placed = shop.post(f"{API}/orders/", order(customer)).json()
    drained()
    [message] = mail.outbox
    assert message.body == f"Dear Ada, order {placed['id']} is on its way.\n"


def test_a_saga_pinned_to_a_version_that_still_names_them_mails_only_the_customer(
    shop, customer, drained
):
    # As place_order v1 was: its schema let an input name a recipient and a text.
    old_schema = {
        **PLACE_ORDER.input_schema,
        "properties": {
            **PLACE_ORDER.input_schema["properties"],
            "email": {"type": "string"},
            "notification": {"type": "object"},
        },
    }
    legacy, _ = definitions.sync_declaration(replace(PLACE_ORDER, input_schema=old_schema))
    start = {
        "definition": "place_order",
        "version": legacy.version,
        "input": order(customer, **RELAY),
    }
    assert shop.post(f"{API}/sagas/", start).status_code == 201
    drained()
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert "pills" not in message.body and message.body.startswith("Hello Ada,")
