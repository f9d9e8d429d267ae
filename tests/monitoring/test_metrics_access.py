"""Who may read /metrics: loopback addresses without BPM_METRICS_TOKEN, the token's holder with it.

A session or an API token of any role is no key to it, and neither is a forwarded header that
claims a loopback address.
"""

from __future__ import annotations

import pytest
from django.test import Client
from factories import UserFactory
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token-0123456789"
REMOTE = "203.0.113.9"
ROLES = ["operators", "viewers", "designers", "clients"]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_without_a_token_a_loopback_scraper_reads_it(client: Client, address: str) -> None:
    response = client.get("/metrics", REMOTE_ADDR=address)

    assert response.status_code == 200
    assert b"# TYPE bpm_sagas gauge" in response.content


@pytest.mark.parametrize("address", [REMOTE, "10.0.0.7", "::2", "", "not-an-address"])
def test_without_a_token_any_other_address_is_refused(client: Client, address: str) -> None:
    response = client.get("/metrics", REMOTE_ADDR=address)

    assert response.status_code == 403
    assert "answers only to this machine's loopback addresses" in response.json()["detail"]
    assert b"bpm_" not in response.content


def test_a_forwarded_header_through_an_untrusted_local_proxy_is_refused(client: Client) -> None:
    # A proxy on this machine connects from 127.0.0.1 whoever its client is.
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=REMOTE)

    assert response.status_code == 403
    assert "reached through a proxy" in response.json()["detail"]


def test_behind_trusted_proxies_a_spoofed_loopback_entry_is_ignored(
    client: Client, settings
) -> None:
    settings.BPM_TRUSTED_PROXIES = 1
    spoofed = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"127.0.0.1, {REMOTE}"
    )
    local = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")

    assert spoofed.status_code == 403
    assert local.status_code == 200


@pytest.mark.parametrize("role", ["superuser", *ROLES])
def test_no_role_reads_it_from_a_remote_address_without_the_token(
    client: Client, role: str
) -> None:
    if role == "superuser":
        user = UserFactory(is_superuser=True)
    else:
        user = UserFactory(groups=[role], is_staff=role != "clients")
    client.force_login(user)
    api_token = Token.objects.create(user=user)

    session = client.get("/metrics", REMOTE_ADDR=REMOTE)
    with_api_token = client.get(
        "/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION=f"Token {api_token.key}"
    )

    assert (session.status_code, with_api_token.status_code) == (403, 403)


def test_with_a_token_a_request_without_it_is_401_even_from_loopback(
    client: Client, settings
) -> None:
    settings.BPM_METRICS_TOKEN = TOKEN

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer wrong", f"bearer {TOKEN.upper()}"],
)
def test_with_a_token_a_wrong_one_is_403(client: Client, settings, authorization: str) -> None:
    settings.BPM_METRICS_TOKEN = TOKEN

    response = client.get("/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 403
    assert response.json()["detail"] == "the bearer token is not BPM_METRICS_TOKEN"


@pytest.mark.parametrize("authorization", [TOKEN, f"Token {TOKEN}", f"Basic {TOKEN}", "Bearer "])
def test_with_a_token_another_scheme_is_401(client: Client, settings, authorization: str) -> None:
    settings.BPM_METRICS_TOKEN = TOKEN

    response = client.get("/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401


def test_with_the_right_token_any_address_reads_it(client: Client, settings) -> None:
    settings.BPM_METRICS_TOKEN = TOKEN

    response = client.get("/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert b"# TYPE bpm_sagas gauge" in response.content


@pytest.mark.parametrize("debug", [True, False])
def test_over_plain_http_with_debug_off_it_is_not_redirected(
    client: Client, settings, debug: bool
) -> None:
    settings.DEBUG = debug
    settings.SECURE_SSL_REDIRECT = not debug

    response = client.get("/metrics", secure=False)

    assert response.status_code == 200
