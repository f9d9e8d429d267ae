"""Real processes against the test database and Redis: rqworker, sweeper, runserver, a browser."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """Return a DATABASE_URL that points a subprocess at the test database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def descendants(pid: int) -> list[int]:
    """Return the ids of every live process below `pid`, read from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class Processes:
    """Starts manage.py subprocesses in their own process groups and stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url(),
            REDIS_URL=settings.REDIS_URL,
            BPM_REDRIVE_GRACE="1",
            BPM_SWEEP_INTERVAL="0.5",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start `manage.py *args`, with `env` added to its environment."""
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def worker(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        return self.start(
            name, "rqworker", "--with-scheduler", "--name", name, *settings.BPM_QUEUES, **env
        )

    def sweeper(self) -> subprocess.Popen[bytes]:
        return self.start("sweeper", "sweep", "--forever", "--interval", "0.5")

    @staticmethod
    def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process and everything it forked (RQ's work horse has its own
        session, so a process group is not enough)."""
        for pid in [*descendants(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        process.wait(timeout=15)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                self.kill(process, signal.SIGTERM)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Return a starter of real subprocesses, all stopped after the test."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()
    for log in sorted(tmp_path.glob("*.log")):
        tail = log.read_text(errors="replace")[-3000:]
        print(f"--- {log.name} ---\n{tail}")


def poll(condition: Callable[[], bool], timeout: float = 60, message: str = "") -> None:
    """Poll until `condition` holds, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")


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


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(url: str, server: subprocess.Popen[bytes]) -> bool:
    """Say whether the server answers `url`; fail at once if it has exited."""
    if server.poll() is not None:
        raise AssertionError(f"runserver exited with {server.returncode}; see web.log below")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"runserver answered {url} with {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture
def live_url(processes: Processes) -> str:
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
def page(browser: Browser, live_url: str, tmp_path: Path) -> Iterator[Page]:
    """Return a page in a fresh browser context (no cookies) whose base URL is the live server."""
    context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 800})
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
