"""Search by what operators know: order id, business key, email, any input or context value,
key=value, error text; the same sagas in the dashboard and the admin, and hostile input refused
with a message. Runs on PostgreSQL (jsonpath on GIN) and SQLite (json_each, json_tree)."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from saga_rows import make_sagas
from testkit import three_steps

from bpm.dashboard.saga_search import HELP, PLACEHOLDER, SearchInvalid, search
from bpm.models import SagaInstance, SagaStatus

SAGAS = reverse("dashboard:sagas")
ADMIN = reverse("admin:bpm_sagainstance_changelist")

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    """Sagas named by what tells them apart."""
    definition = three_steps()

    def one(name, **fields):
        return make_sagas(definition, 1, **fields)[0]

    return {
        "order_6": one(
            "order_6",
            business_key="6",
            input={"order_id": 6, "customer_email": "ada@example.com", "amount": 5},
        ),
        "order_60": one(
            "order_60",
            business_key="60",
            input={"order_id": 60, "customer": {"email": "grace@example.org", "tier": "gold"}},
        ),
        "text_amount": one(
            "text_amount", business_key="61", input={"amount": "5", "tags": ["rush", "gift"]}
        ),
        "float_amount": one(
            "float_amount",
            business_key="62",
            input={"amount": 5.0, "products": [4, 5], "note": "50%_off ünïcødé"},
        ),
        "context_email": one(
            "context_email",
            business_key="63",
            context={"place_order": {"customer_email": "linus@example.net", "paid": True}},
        ),
        "stuck": one(
            "stuck",
            business_key="64",
            status=SagaStatus.STUCK,
            stuck_reason="RETRIES_EXHAUSTED",
            stuck_step="send_confirmation",
            stuck_error_code="SMTP_DOWN",
            stuck_error="Mailbox does not exist: 100%_sure",
        ),
    }


def found(shop, text):
    ids = set(SagaInstance.objects.filter(search(text)).values_list("id", flat=True))
    return {name for name, saga in shop.items() if saga.id in ids}


def test_an_order_id_finds_its_saga_not_the_ids_that_start_with_it(shop):
    # "6" was 13 sagas by id prefix in the dashboard: now it is the order (business key) and
    # the sagas holding the value 6.
    assert found(shop, "6") == {"order_6"}
    assert found(shop, "60") == {"order_60"}


def test_an_email_anywhere_in_the_input_or_context_finds_its_saga(shop):
    assert found(shop, "ada@example.com") == {"order_6"}
    assert found(shop, "grace@example.org") == {"order_60"}
    assert found(shop, "linus@example.net") == {"context_email"}
    assert found(shop, "ada@example") == set()  # values match whole, not in part


def test_key_value_finds_the_field_as_typed_number_or_text(shop):
    assert found(shop, "amount=5") == {"order_6", "text_amount", "float_amount"}
    assert found(shop, "amount=5.0") == {"order_6", "text_amount", "float_amount"} - {"text_amount"}
    assert found(shop, 'amount="5"') == {"text_amount"}
    assert found(shop, "order_id=6") == {"order_6"}
    assert found(shop, "customer_email = ada@example.com") == {"order_6"}


def test_key_value_reaches_nested_keys_arrays_and_the_context(shop):
    assert found(shop, "customer.email=grace@example.org") == {"order_60"}
    assert found(shop, "customer.tier=gold") == {"order_60"}
    assert found(shop, "customer=gold") == set()  # not a value one level down
    assert found(shop, "products=5") == {"float_amount"}
    assert found(shop, "tags=gift") == {"text_amount"}
    assert found(shop, "place_order.paid=true") == {"context_email"}
    assert found(shop, "place_order.paid=1") == set()  # true is not the number 1


def test_wildcards_and_unicode_are_plain_characters(shop):
    assert found(shop, "note=50%_off ünïcødé") == {"float_amount"}
    assert found(shop, "note=50%") == set()
    assert found(shop, "%") == set()
    assert found(shop, "_") == set()
    assert found(shop, "100%_sure") == {"stuck"}
    assert found(shop, "100%x") == set()


def test_words_of_the_error_find_the_stuck_saga_whatever_their_case(shop):
    assert found(shop, "mailbox does not") == {"stuck"}
    assert found(shop, "MAILBOX") == {"stuck"}
    assert found(shop, "ma") == set()  # two characters are too few for error text


def test_a_saga_id_or_eight_of_its_first_characters_finds_it(shop):
    saga = shop["stuck"]
    assert found(shop, str(saga.id)) == {"stuck"}
    assert found(shop, saga.id.hex[:8]) == {"stuck"}
    assert found(shop, f"{saga.id.hex[:8]}…") == {"stuck"}
    assert found(shop, str(saga.id).upper()) == {"stuck"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("=5", "key before “=” is missing"),
        ("amount=", "value after “=” is missing"),
        ("a..b=1", "empty part"),
        ('a"b=1', "cannot contain quotes"),
        (".".join("k" * 9) + "=1", "at most 8 parts"),
        ("x" * 201, "at most 200 characters"),
        ("a\x00b", "NUL"),
    ],
)
def test_malformed_searches_are_refused_with_a_message(text, message):
    with pytest.raises(SearchInvalid, match=message):
        search(text)


def test_an_empty_value_can_be_asked_for_quoted():
    make_sagas(three_steps(), 1, input={"note": ""})
    assert SagaInstance.objects.filter(search('note=""')).count() == 1


def test_blank_search_finds_nothing_rather_than_everything(shop):
    assert found(shop, "  …  ") == set()


@pytest.mark.parametrize(
    "text",
    ["6", "60", "amount=5", "ada@example.com", "customer.tier=gold", "mailbox", "products=5"],
)
def test_the_dashboard_and_the_admin_find_the_same_sagas(shop, admin_client, text):
    dashboard = admin_client.get(SAGAS, {"q": text}).context["page"].rows
    admin = admin_client.get(ADMIN, {"q": text}).context["cl"].result_list
    assert (
        {saga.id for saga in dashboard}
        == {saga.id for saga in admin}
        == {saga.id for saga in SagaInstance.objects.filter(search(text))}
    )
    assert dashboard


def test_both_search_boxes_say_what_they_search(admin_client):
    dashboard = admin_client.get(SAGAS).content.decode()
    assert f'placeholder="{PLACEHOLDER}"' in dashboard
    assert "key=value" in dashboard and "order id" in dashboard
    admin = admin_client.get(ADMIN).content.decode()
    assert "key=value" in admin and HELP.split(",")[0] in admin


def test_a_malformed_search_says_why_in_both(admin_client, shop):
    dashboard = admin_client.get(SAGAS, {"q": "=5"})
    assert dashboard.context["page"] is None
    assert "key before “=” is missing" in dashboard.content.decode()
    admin = admin_client.get(ADMIN, {"q": "=5"}, follow=True)
    assert "Nothing was searched: The key before “=” is missing" in admin.content.decode()
    assert list(admin.context["cl"].result_list) == []


def test_a_long_search_is_refused_not_run(admin_client):
    response = admin_client.get(SAGAS, {"q": "a=" + "x" * 5000})
    assert response.status_code == 200
    assert response.context["page"] is None
    assert "q" in response.context["form"].errors


def test_an_unknown_id_finds_nothing():
    assert not SagaInstance.objects.filter(search(str(uuid.uuid4()))).exists()
