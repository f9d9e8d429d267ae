"""Repeated failed logins lock a user name and an address out; failed tokens are throttled."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.test import Client
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def log_in(username: str, password: str, address: str = "10.0.0.1") -> int:
    """Post the admin's login form from `address`; return 302 (in) or the refusal's status."""
    response = Client(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}
    )
    return response.status_code


@pytest.fixture
def olga():
    return UserFactory(username="olga", groups=["operators"])


def test_a_user_name_is_locked_out_after_five_failures_from_any_addresses(settings, olga):
    failures = [log_in("olga", "wrong", f"10.0.1.{n}") for n in range(5)]
    assert failures == [200, 200, 200, 200, 429]  # the login form again, then the lockout
    # The right password from a fresh address does not get in either.
    assert log_in("olga", "secret-password", "10.0.2.1") == 429


def test_an_address_is_locked_out_after_five_failures_with_any_user_names(olga):
    for n in range(5):
        log_in(f"nobody{n}", "wrong", "10.0.3.1")
    assert log_in("olga", "secret-password", "10.0.3.1") == 429
    assert log_in("olga", "secret-password", "10.0.3.2") == 302


def test_a_success_before_the_limit_starts_the_count_again(olga):
    for _ in range(4):
        log_in("olga", "wrong")
    assert log_in("olga", "secret-password") == 302
    for _ in range(4):
        log_in("olga", "wrong")
    assert log_in("olga", "secret-password") == 302


def test_attempts_are_audited(olga):
    log_in("olga", "wrong", "10.0.4.1")
    log_in("olga", "secret-password", "10.0.4.1")
    assert AccessFailureLog.objects.filter(username="olga", ip_address="10.0.4.1").count() == 1
    assert AccessLog.objects.filter(username="olga", ip_address="10.0.4.1").count() == 1


def test_a_superuser_unlocks_a_user_in_the_admin(admin_client, olga):
    for _ in range(5):
        log_in("olga", "wrong", "10.0.5.1")
    assert log_in("olga", "secret-password", "10.0.5.2") == 429
    attempts = list(AccessAttempt.objects.filter(username="olga").values_list("pk", flat=True))
    assert attempts
    unlock = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert unlock.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert log_in("olga", "secret-password", "10.0.5.2") == 302


def test_an_operator_cannot_see_or_clear_the_lockouts(client, olga):
    client.force_login(olga)
    assert client.get("/admin/axes/accessattempt/").status_code == 403


def wrong_token_client(address: str = "10.0.6.1") -> APIClient:
    api = APIClient(REMOTE_ADDR=address)
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    return api


def test_failed_tokens_from_an_address_are_throttled_after_ten(settings):
    settings.BPM_API_ANON_PER_MINUTE = 0
    guesser = wrong_token_client()
    statuses = [guesser.get("/api/v1/sagas/").status_code for _ in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    refused = guesser.get("/api/v1/sagas/")
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    # Another address is not held up.
    assert wrong_token_client("10.0.6.2").get("/api/v1/sagas/").status_code == 401


def test_a_locked_out_address_cannot_try_a_right_token_either(settings):
    settings.BPM_API_ANON_PER_MINUTE = 0
    for _ in range(10):
        wrong_token_client().get("/api/v1/sagas/")
    token = Token.objects.create(user=UserFactory(groups=["viewers"]))
    right = APIClient(REMOTE_ADDR="10.0.6.1")
    right.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert right.get("/api/v1/sagas/").status_code == 429


def test_right_tokens_do_not_count_as_failures(settings):
    settings.BPM_API_ANON_PER_MINUTE = 0
    settings.BPM_API_USER_PER_MINUTE = 0
    token = Token.objects.create(user=UserFactory(groups=["viewers"]))
    api = APIClient(REMOTE_ADDR="10.0.7.1")
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert {api.get("/api/v1/sagas/").status_code for _ in range(15)} == {200}
