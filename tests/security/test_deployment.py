"""Production defaults: a clean `check --deploy`, DEBUG only on request, HTTPS-only cookies."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-only-9f2c7e41b8d6a3f05e7c2b9d4a1f8e6c3b7d2a9f5e1c8b4d7a3f6e2c9b5d1a8"
# What docs/security.md lists for production; the database and Redis are unreachable on purpose.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": SECRET,
    "ALLOWED_HOSTS": "bpm.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://bpm.example.com",
    "BPM_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "BPM_TRUSTED_PROXIES": "1",
    "DATABASE_URL": "postgres://nobody@127.0.0.1:9/nothing",
    "REDIS_URL": "redis://127.0.0.1:9/0",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py with only the given variables beyond the basic environment."""
    base = {
        key: value
        for key, value in os.environ.items()
        if key in {"PATH", "HOME", "LANG", "BPM_VAR_DIR", "VIRTUAL_ENV"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_check_deploy_passes_at_warning_level_without_a_database():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_needs_no_database():
    result = manage("check", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_is_off_unless_asked_for():
    env = {key: value for key, value in PRODUCTION.items() if key not in {"DEBUG", "SECRET_KEY"}}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_debug_with_a_public_host_name_is_refused_at_start():
    result = manage("check", **{**PRODUCTION, "DEBUG": "true"})
    assert result.returncode != 0
    assert "DEBUG is on with ALLOWED_HOSTS naming bpm.example.com" in result.stderr


def test_debug_on_this_machine_only_is_accepted():
    env = {key: value for key, value in PRODUCTION.items() if key != "ALLOWED_HOSTS"}
    result = manage("check", **{**env, "DEBUG": "true"})
    assert result.returncode == 0, result.stderr


def test_a_csrf_origin_without_its_scheme_is_refused():
    result = manage("check", **{**PRODUCTION, "CSRF_TRUSTED_ORIGINS": "bpm.example.com"})
    assert result.returncode != 0
    assert "needs its scheme" in result.stderr


def get(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers={"Host": "bpm.example.com", **headers})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.mark.django_db(transaction=True)
def test_with_debug_off_https_is_enforced_and_cookies_are_secure(gunicorn):
    env = {k: v for k, v in PRODUCTION.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    port = gunicorn(workers=1, threads=2, **env)
    plain = get(port, "/admin/login/", {})
    assert plain.status == 301
    assert plain.getheader("Location") == "https://bpm.example.com/admin/login/"
    secure = get(port, "/admin/login/", {"X-Forwarded-Proto": "https"})
    assert secure.status == 200
    assert secure.getheader("Strict-Transport-Security") == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert secure.getheader("Referrer-Policy") == "same-origin"
    assert secure.getheader("X-Frame-Options") == "DENY"
    assert "default-src 'self'" in secure.getheader("Content-Security-Policy", "")
    cookie = secure.getheader("Set-Cookie", "")
    assert cookie.startswith("csrftoken=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


DEVELOPMENT_USERS = [("admin", None), ("operator", "operators"), ("viewer", "viewers")]


@pytest.mark.django_db
@pytest.mark.parametrize(("username", "group"), DEVELOPMENT_USERS)
def test_the_development_users_cannot_log_in_with_debug_off(settings, username, group):
    user = User.objects.create_user(
        username, password=username, is_staff=True, is_superuser=group is None
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    form = {"username": username, "password": username, "next": "/admin/"}
    settings.DEBUG = False
    assert Client().post("/admin/login/", form).status_code == 200  # the form again
    settings.DEBUG = True
    assert Client().post("/admin/login/", form).status_code == 302
