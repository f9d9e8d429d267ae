"""A real gunicorn on the test database and Redis, for what the test client cannot do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from subprocesses import ROOT, database_url, free_port


def wait_until_up(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError("gunicorn did not answer within 90 s")


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Return a starter of gunicorn (gthread workers) with extra environment; yields its port."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(workers: int = 2, threads: int = 8, **env: str) -> int:
        port = free_port()
        log = tmp_path / f"gunicorn-{port}.log"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "bpm.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--worker-class",
                "gthread",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": database_url(),
                "REDIS_URL": settings.REDIS_URL,
                **env,
            },
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((server, log))
        wait_until_up(port, server, log)
        return port

    yield start
    for server, log in started:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-2000:]}")


CHROMIUM = Path(os.getenv("BPM_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def runserver(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Return a starter of `runserver --insecure` with extra environment; returns its base URL."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(**env: str) -> str:
        port = free_port()
        log = tmp_path / f"runserver-{port}.log"
        server = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
                "--insecure",
                "--skip-checks",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": database_url(),
                "REDIS_URL": settings.REDIS_URL,
                **env,
            },
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((server, log))
        wait_until_up(port, server, log)
        return f"http://localhost:{port}"

    yield start
    for server, log in started:
        server.terminate()
        server.wait(timeout=20)
        print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Launch Debian's headless chromium; missing, it fails in CI and skips elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's browser with `apt-get install chromium`"
        if os.getenv("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's loop in this thread makes Django refuse ORM calls otherwise.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
