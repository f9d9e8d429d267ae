"""Rate limits hold under concurrency: each request is counted atomically in Redis."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import override_settings
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bpm.api import throttling


def status_of(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def fire(url: str, count: int, headers: dict[str, str] | None = None) -> list[int]:
    """Send `count` GETs from 60 threads at once; return the statuses."""
    with ThreadPoolExecutor(max_workers=60) as pool:
        return list(pool.map(lambda _: status_of(url, headers or {}), range(count)))


@pytest.mark.django_db(transaction=True)
def test_300_concurrent_anonymous_requests_against_60_a_minute_let_60_through(gunicorn):
    port = gunicorn(workers=3, threads=16, BPM_API_ANON_PER_MINUTE="60")
    statuses = fire(f"http://127.0.0.1:{port}/api/v1/sagas/", 300)
    assert set(statuses) <= {401, 429}
    assert statuses.count(401) == 60


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_of_one_user_hold_the_user_limit(gunicorn):
    token = Token.objects.create(user=UserFactory(groups=["viewers"]))
    port = gunicorn(workers=3, threads=16, BPM_API_USER_PER_MINUTE="50")
    statuses = fire(
        f"http://127.0.0.1:{port}/api/v1/definitions/",
        250,
        {"Authorization": f"Token {token.key}"},
    )
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == 50


def test_a_spoofed_x_forwarded_for_does_not_escape_the_anonymous_limit(settings):
    settings.BPM_API_ANON_PER_MINUTE = 2
    anonymous = APIClient()
    statuses = [
        anonymous.get("/api/v1/sagas/", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 429, 429]


@pytest.mark.django_db
@override_settings(REDIS_CONNECTION={"URL": "redis://127.0.0.1:1/0"}, BPM_API_ANON_PER_MINUTE=1)
def test_with_redis_unreachable_requests_go_through_and_a_warning_is_logged(caplog):
    anonymous = APIClient()
    with caplog.at_level(logging.WARNING, logger="bpm.api.throttling"):
        statuses = [anonymous.get("/api/v1/sagas/").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    warnings = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
    assert len(warnings) == 6  # the anonymous and the user throttle, for each request


def test_the_window_counts_each_hit_once():
    for _ in range(3):
        throttling.window_hit("test-window", limit=5, seconds=60)
    assert throttling.window_count("test-window", seconds=60) == 3
