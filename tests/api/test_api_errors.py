"""Errors have one shape, and no bad input ever gets a 500."""

from __future__ import annotations

import pytest

from bpm.models import SagaInstance
from orders.models import Order

pytestmark = pytest.mark.django_db

SAGA = "00000000-0000-0000-0000-000000000000"
RAW_BODIES = [
    "",
    "{",
    "null",
    "[]",
    '"text"',
    "12",
    '{"name": NaN}',
    '{"input": {"x": 1e999}}',
    '{"input": {"x": -Infinity}}',
    '{"customer_id": 1e999}',
    '{"customer_id": ' + "9" * 5000 + "}",
    '{"reason": "x", "output": {"\\u0000": 1}}',
    '{"reason": "x", "input": {"a": "\\ud800"}}',
    '{"name": "\\udfff", "credit_limit": "1"}',
    '{"input": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"input": ' + '{"a":' * 40 + "1" + "}" * 40 + "}",
    '{"reason": "x", "context": {"big": "' + "x" * 70_000 + '"}}',
    "\xff\xfe",
]
POSTS = [
    "/api/v1/customers/",
    "/api/v1/orders/",
    "/api/v1/sagas/",
    f"/api/v1/sagas/{SAGA}/retry/",
    f"/api/v1/sagas/{SAGA}/skip/",
]


@pytest.mark.parametrize("url", POSTS)
@pytest.mark.parametrize("raw", RAW_BODIES)
def test_a_malformed_body_is_a_4xx_error_in_the_api_shape(operator, as_role, url, raw):
    api = as_role("clients") if "/sagas/" not in url or url.endswith("sagas/") else operator
    response = api.generic("POST", url, raw.encode("utf-8", "surrogatepass"), "application/json")
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert isinstance(body["message"], str) and body["message"]
    assert not Order.objects.exists() and not SagaInstance.objects.exists()


@pytest.mark.parametrize("raw", [b"{", b'\xff\xfe{"name": 1}', b'{"name": "\xc3"}'])
def test_a_malformed_json_body_is_a_parse_error(shop, raw):
    response = shop.generic("POST", "/api/v1/customers/", raw, "application/json")
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_a_deeply_nested_input_names_the_problem(shop):
    nested = '{"a":' * 40 + "1" + "}" * 40
    raw = '{"definition": "place_order", "input": ' + nested + "}"
    response = shop.generic("POST", "/api/v1/sagas/", raw, "application/json")
    assert response.status_code == 400
    assert "nested more than 32 levels" in response.json()["details"]["input"][0]


def test_a_validation_error_lists_every_field(shop):
    response = shop.post("/api/v1/orders/", {"products": [0, "x"], "total": 5})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["details"]) == {
        "customer_id",
        "products[0]",
        "products[1]",
        "total",
        "payment_method",
    }
    assert "(and 4 more; see details)" in body["message"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/sagas/%00/",
        "/api/v1/sagas/' OR 1=1 --/",
        "/api/v1/sagas/" + "a" * 5000 + "/",
        "/api/v1/orders/99999999999999999999/",
        "/api/v1/customers/-0/orders/",
        "/api/v1/definitions/%F0%9F%92%A5/",
        "/api/v1/definitions/" + "x" * 5000 + "/",
    ],
)
def test_strange_ids_in_urls_are_404s(operator, url):
    response = operator.get(url)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
