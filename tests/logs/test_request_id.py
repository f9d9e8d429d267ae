"""X-Request-ID: on every response, taken from the request when safe, and on what it caused."""

from __future__ import annotations

import logging
import re

import pytest
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from testkit import three_steps

from bpm import log_context
from bpm.models import SagaInstance
from bpm.request_id import request_id_from

pytestmark = pytest.mark.django_db

FRESH = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def operator() -> APIClient:
    api = APIClient()
    user = UserFactory(username="olga", groups=["operators"])
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def test_an_api_response_without_an_id_gets_a_fresh_one(operator):
    first = operator.get("/api/v1/sagas/")["X-Request-ID"]
    second = operator.get("/api/v1/sagas/")["X-Request-ID"]
    assert FRESH.fullmatch(first) and FRESH.fullmatch(second)
    assert first != second


def test_a_safe_id_from_the_request_is_answered_back(operator):
    response = operator.get("/api/v1/sagas/", HTTP_X_REQUEST_ID="lb-7f3a:42")
    assert response["X-Request-ID"] == "lb-7f3a:42"


def test_pages_and_errors_carry_the_id_too(client):
    assert client.get("/admin/login/", HTTP_X_REQUEST_ID="page-1")["X-Request-ID"] == "page-1"
    assert client.get("/nowhere/", HTTP_X_REQUEST_ID="gone-1")["X-Request-ID"] == "gone-1"
    assert FRESH.fullmatch(APIClient().get("/api/v1/sagas/")["X-Request-ID"])


@pytest.mark.parametrize(
    "hostile",
    [
        "",
        "x" * 129,
        "two words",
        'quote"break',
        "line\nbreak",
        "tab\tid",
        '{"level":"ERROR"}',
        "<script>",
        "ünïcode",
        "-starts-with-a-dash",
        "\x1b[31mred",
    ],
)
def test_a_hostile_id_is_replaced_by_a_fresh_one(hostile):
    assert FRESH.fullmatch(request_id_from(hostile))


def test_a_hostile_header_never_reaches_the_response(operator):
    response = operator.get("/api/v1/sagas/", HTTP_X_REQUEST_ID="a" * 500)
    assert FRESH.fullmatch(response["X-Request-ID"])


def test_the_longest_accepted_id_is_128_characters():
    assert request_id_from("a" * 128) == "a" * 128


def test_a_saga_started_by_a_request_keeps_its_id_and_one_started_by_code_none(operator):
    three_steps()
    body = {"definition": "three_compensatable_remote", "input": {}}
    response = operator.post("/api/v1/sagas/", body, HTTP_X_REQUEST_ID="start-1")
    assert response.status_code == 201
    assert SagaInstance.objects.get(pk=response.json()["id"]).request_id == "start-1"
    from bpm import services

    assert services.saga_start(definition=body["definition"], input={}, actor="t").request_id == ""


def test_what_a_request_logs_carries_its_id(operator, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = operator.post(
            "/api/v1/sagas/00000000-0000-0000-0000-000000000000/abort/",
            {"reason": "x"},
            HTTP_X_REQUEST_ID="abort-1",
        )
    assert response.status_code == 404
    lines = [r for r in caplog.records if r.name == "django.request"]
    assert len(lines) == 1, "logged once, by the middleware, not again by Django"
    assert getattr(lines[0], "request_id", None) == "abort-1"
    assert log_context.current().get("request_id") is None
