"""Real processes against the test database and Redis: rqworker, sweeper, runserver, a browser."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from subprocesses import Processes, answers, free_port, poll, print_logs


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Return a starter of real subprocesses, all stopped after the test."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()
    print_logs(tmp_path)


@pytest.fixture
def wait_for() -> Callable[..., None]:
    """Return the poller: wait_for(condition, timeout=60, message='')."""
    return poll


# A real web server and a real browser: Debian's chromium driven by Playwright, never downloaded.

CHROMIUM = Path(os.getenv("BPM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# The web server's DEBUG: on (the tests' default, as `make run`), unless a test parametrizes
# `web_debug` indirectly; tests/browsing.py's DEBUG_ON_AND_OFF runs a test in both modes.
DEBUG_OFF_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "a-test-secret-key-that-is-long-enough-for-django-checks",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    # Plain HTTP on loopback: no redirect to HTTPS (Chromium keeps Secure cookies there).
    "BPM_SSL_REDIRECT": "false",
}


@pytest.fixture
def web_debug(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Return whether the web server runs with DEBUG on, setting the environment it starts in."""
    debug = getattr(request, "param", "true") == "true"
    if not debug:
        for key, value in DEBUG_OFF_ENV.items():
            monkeypatch.setenv(key, value)
    return debug


@pytest.fixture
def live_url(processes: Processes, web_debug: bool) -> str:
    """Start `manage.py runserver` on the test database and return its base URL once it answers.

    --insecure serves the admin's CSS and htmx from the apps' static folders even with DEBUG off.
    """
    port = free_port()
    server = processes.start(
        "web", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure", "--skip-checks"
    )
    url = f"http://127.0.0.1:{port}"
    poll(lambda: answers(f"{url}/admin/login/", server), timeout=30, message="runserver")
    return url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Launch headless chromium once per module; missing, it fails in CI and skips elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's browser with `apt-get install chromium`"
        if os.getenv("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API keeps an asyncio loop running in this thread, which makes Django
    # refuse ORM calls from the test body and from pytest-django's flush.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def viewport(request: pytest.FixtureRequest) -> ViewportSize:
    """Return the browser's window size: 1280x800 unless parametrized (LAPTOP is 1366x768)."""
    width, height = getattr(request, "param", (1280, 800))
    return ViewportSize(width=width, height=height)


@pytest.fixture
def page(browser: Browser, live_url: str, viewport: ViewportSize, tmp_path: Path) -> Iterator[Page]:
    """Return a page in a fresh browser context (no cookies) whose base URL is the live server."""
    context = browser.new_context(base_url=live_url, viewport=viewport)
    # Generous for a loaded CI machine; a passing step never waits for it.
    context.set_default_timeout(15_000)
    expect.set_options(timeout=10_000)
    page = context.new_page()
    yield page
    # What the browser showed last, for a failing test's report.
    with contextlib.suppress(PlaywrightError):
        page.screenshot(path=tmp_path / "last-page.png", full_page=True)
    print(f"--- browser ---\nlast page: {page.url}\nscreenshot: {tmp_path / 'last-page.png'}")
    context.close()
