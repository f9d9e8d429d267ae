"""/healthz: 200 while the process serves, asking nothing of the database or Redis."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_it_answers_ok_with_one_check_for_the_process(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["process"]["ok"] is True
    assert set(body["checks"]["process"]) == {"ok", "detail", "seconds"}


def test_it_asks_the_database_nothing_and_sets_no_cookie(
    client: Client, django_assert_num_queries
) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert not response.cookies


@pytest.mark.parametrize("debug", [True, False])
def test_a_load_balancer_probing_over_plain_http_by_address_gets_200(
    client: Client, settings, debug: bool
) -> None:
    # With DEBUG off the site redirects plain HTTP to HTTPS and refuses unknown hosts: a probe
    # by address over HTTP must get neither.
    settings.DEBUG = debug
    settings.SECURE_SSL_REDIRECT = not debug
    settings.ALLOWED_HOSTS = ["shop.example.com"]

    for path in ("/healthz", "/healthz/"):
        response = client.get(path, HTTP_HOST="10.0.0.7:8000", secure=False)
        assert response.status_code == 200, (path, response)


def test_head_is_answered_and_a_post_is_refused_with_what_is_allowed(client: Client) -> None:
    assert client.head("/healthz").status_code == 200
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert "answers GET and HEAD, not POST" in response.json()["detail"]
