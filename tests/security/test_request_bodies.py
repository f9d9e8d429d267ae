"""Oversized and chunked bodies get the API's JSON error shape, from a real gunicorn."""

from __future__ import annotations

import http.client
import json

import pytest
from factories import UserFactory
from rest_framework.authtoken.models import Token

from payments.models import Customer

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 4096


@pytest.fixture
def server(gunicorn) -> int:
    return gunicorn(workers=1, threads=4, DATA_UPLOAD_MAX_MEMORY_SIZE=str(LIMIT))


@pytest.fixture
def token() -> str:
    return Token.objects.create(user=UserFactory(groups=["clients"])).key


def send(port: int, token: str, body: bytes, *, chunked: bool = False) -> tuple[int, str, dict]:
    """POST a customer with http.client, as a length-prefixed or a chunked body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)]
        conn.request("POST", "/api/v1/customers/", iter(pieces), headers, encode_chunked=True)
    else:
        conn.request("POST", "/api/v1/customers/", body, headers)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    content_type = response.getheader("Content-Type", "")
    return response.status, content_type, json.loads(text) if "json" in content_type else {}


def customer(padding: int) -> bytes:
    return json.dumps({"name": "Ada" + " " * padding, "credit_limit": "1.00"}).encode()


def test_a_body_over_the_limit_is_a_json_413(server, token):
    status, content_type, body = send(server, token, customer(LIMIT))
    assert (status, content_type) == (413, "application/json")
    assert body["code"] == "too_large"
    assert str(LIMIT) in body["message"]
    assert Customer.objects.count() == 0


def test_a_chunked_body_is_refused_with_a_json_411(server, token):
    status, content_type, body = send(server, token, customer(0), chunked=True)
    assert (status, content_type) == (411, "application/json")
    assert body["code"] == "length_required"
    assert Customer.objects.count() == 0


def test_a_large_chunked_body_is_refused_the_same_way(server, token):
    status, _, body = send(server, token, customer(LIMIT * 4), chunked=True)
    assert status == 411
    assert body["code"] == "length_required"


def test_a_body_under_the_limit_is_accepted(server, token):
    status, _, body = send(server, token, customer(100))
    assert status == 201, body
    assert Customer.objects.count() == 1
