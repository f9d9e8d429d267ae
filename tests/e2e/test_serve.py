"""`manage.py serve`, the production process set on one machine, as real processes.

It refuses to start without its settings; started, it serves the site and its hashed, gzipped
static files from gunicorn, restarts a worker killed with SIGKILL, runs sagas placed over the API,
and on SIGTERM stops every process it started and exits 0.

The server counts as up when `READY_PATH` answers 200 (see `wait_until_serving`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from factories import UserFactory
from playwright.sync_api import ConsoleMessage, Response
from rest_framework.authtoken.models import Token
from rq.worker import Worker
from subprocesses import ROOT, database_url, free_port, poll, print_logs

from bpm.models import StepRun, StepStatus
from bpm.supervisor import descendants
from orders.models import Order

pytestmark = [pytest.mark.e2e]

SECRET_KEY = "test-only-5d0c8e2a7b914f36a8c1e5d27f0b9a4c6e3d8f1b2a7c5e9d0f4b6a8c3e1d7f2a"
# What a load balancer polls: 200 once the database, migrations, Redis, a worker on every queue
# and a fresh sweeper are there (docs/monitoring.md).
READY_PATH = "/readyz"
# Every metric the issue names, by the name in its `# TYPE` line.
METRICS = (
    "bpm_sagas",
    "bpm_stuck_sagas",
    "bpm_saga_duration_seconds",
    "bpm_step_duration_seconds",
    "bpm_step_attempts_total",
    "bpm_queue_jobs",
    "bpm_workers",
    "bpm_sweeper_last_run_timestamp_seconds",
    "bpm_leases_expired_total",
    "bpm_redrives_total",
    "bpm_http_requests_total",
    "bpm_http_request_duration_seconds",
)
# serve's own stop timeout in these tests, and the margin to kill what is left and exit.
STOP_TIMEOUT = 10
EXIT_MARGIN = 10
# A worker SIGKILLed is started again after 1 s (the first backoff); registering takes a fresh
# interpreter's Django start-up, a few seconds on a loaded machine.
RESTART_BOUND = 30
HASHED_NAME = re.compile(r"\.[0-9a-f]{12}\.")


def production_env(var_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """Return an environment in which serve may start: DEBUG off, SECRET_KEY, ALLOWED_HOSTS."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    env.update(
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1",
        BPM_VAR_DIR=str(var_dir),
        BPM_STATIC_ROOT=str(var_dir / "static"),
        PORT=str(port),
        WEB_CONCURRENCY="2",
        BPM_WORKERS="2",
        BPM_STOP_TIMEOUT=str(STOP_TIMEOUT),
        BPM_SWEEP_INTERVAL="0.5",
        BPM_REDRIVE_GRACE="1",
        # Plain HTTP in the test; production sits behind a TLS proxy (docs/security.md).
        BPM_SSL_REDIRECT="false",
        BPM_HSTS_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Served:
    """One `manage.py serve` process in a session of its own, logging to serve.log."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = int(env["PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def session_processes(self) -> list[int]:
        """Return the live processes of serve's session: serve and everything it started."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is the state (Z: a zombie, already dead); fields[3] the session id.
            if int(fields[3]) == self.process.pid and fields[0] != "Z":
                found.append(int(stat.parent.name))
        return found

    def stop(self) -> int:
        """Send SIGTERM and return serve's exit code, failing past the stop bound."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT + EXIT_MARGIN)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"serve did not exit within {STOP_TIMEOUT + EXIT_MARGIN}s of SIGTERM"
            ) from None

    def kill_everything(self) -> None:
        """After a failure: kill whatever is left of the session."""
        for pid in self.session_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[Served]]:
    """Collect the serve processes a test starts; kill what is left and print logs after."""
    started: list[Served] = []
    yield started
    for served in started:
        served.kill_everything()
    print_logs(tmp_path)


def start(started: list[Served], env: dict[str, str], log: Path) -> Served:
    served = Served(env, log)
    started.append(served)
    wait_until_serving(served)
    return served


def wait_until_serving(served: Served, timeout: float = 120) -> None:
    """Poll READY_PATH until it answers 200; fail at once if serve exits."""

    def ready() -> bool:
        if served.process.poll() is not None:
            raise AssertionError(f"serve exited with {served.process.returncode}")
        try:
            with urllib.request.urlopen(served.base + READY_PATH, timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    poll(ready, timeout=timeout, message=f"serve to answer {READY_PATH}")


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def call_api(base: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def assert_no_process_left(served: Served) -> None:
    # A moment for the kernel to reap what was just killed.
    poll(lambda: served.session_processes() == [], timeout=5, message="no process left")


# --- refusals: fast, no process but serve's own start-up ----------------------------------------


def run_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"DEBUG": "true"}, "DEBUG"),
        # One of bpm.deployment's variables; tests/bpm/test_deployment.py checks each of them.
        ({"BPM_WORKERS": "0"}, "BPM_WORKERS"),
    ],
)
def test_serve_refuses_to_start_naming_the_variable(tmp_path, change, named):
    env = production_env(tmp_path / "var", free_port(), **change)
    result = run_serve(env)
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    # It stopped before doing anything: no database, no static files, no Redis.
    assert not (tmp_path / "var" / "bpm.sqlite3").exists()
    assert not (tmp_path / "var" / "static").exists()


# --- the whole process set: slow ---------------------------------------------------------------


@pytest.mark.slow
def test_serve_on_the_embedded_defaults_serves_hashed_static_files_and_stops_cleanly(
    serve, tmp_path
):
    """No DATABASE_URL nor REDIS_URL: serve migrates its own SQLite and starts its own Redis."""
    var_dir = tmp_path / "var"
    served = start(serve, production_env(var_dir, free_port()), tmp_path / "serve.log")
    assert "Warning: running on the embedded defaults" in served.output()

    status, headers, body = get(served.base + "/admin/login/")
    assert status == 200
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', body.decode())
    stylesheet = next(path for path in assets if path.startswith("/static/admin/css/base."))
    assert HASHED_NAME.search(stylesheet), stylesheet
    for path in assets:
        assert get(served.base + path)[0] == 200, path
    status, headers, body = get(served.base + stylesheet, **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"].startswith("text/css")
    cache = headers["Cache-Control"]
    assert "immutable" in cache
    assert int(re.search(r"max-age=(\d+)", cache)[1]) >= 365 * 24 * 3600  # type: ignore[index]
    # Public files, their gzipped copies too (a web server may run as another user).
    collected = var_dir / "static" / stylesheet.removeprefix("/static/")
    for path in [collected, collected.with_name(collected.name + ".gz")]:
        assert path.stat().st_mode & 0o777 == 0o644, path
    # An unhashed name is served too, but must be revalidated.
    status, headers, _ = get(served.base + "/static/admin/css/base.css")
    assert status == 200 and "immutable" not in headers.get("Cache-Control", "")

    redis_pid = int((var_dir / "redis" / "redis.pid").read_text())
    assert served.stop() == 0
    assert_no_process_left(served)
    poll(lambda: not Path(f"/proc/{redis_pid}").exists(), timeout=10, message="Redis stopped")
    assert "Stopped." in served.output()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_serve_restarts_a_killed_worker_runs_a_saga_and_stops_cleanly(serve, tmp_path):
    """On the test database and Redis: SIGKILL a worker, place orders, SIGTERM serve while a
    step runs: the step finishes, then everything exits."""
    env = production_env(
        tmp_path / "var",
        free_port(),
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        # Long enough to send SIGTERM while the step runs, well within the stop timeout.
        PAYMENTS_GATEWAY_SLOW_SECONDS="4",
    )
    served = start(serve, env, tmp_path / "serve.log")
    connection = django_rq.get_connection("default")
    poll(lambda: len(Worker.all(connection=connection)) == 2, timeout=60, message="2 workers")
    before = {worker.name: worker.pid for worker in Worker.all(connection=connection)}

    victim_pid = sorted(before.items())[0][1]
    assert victim_pid in descendants(served.process.pid)
    os.kill(victim_pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def replaced() -> bool:
        names = {worker.name for worker in Worker.all(connection=connection)}
        return any(name not in before and name.startswith("worker-") for name in names)

    poll(replaced, timeout=RESTART_BOUND, message="a new worker to register")
    print(f"a new worker registered {time.monotonic() - killed_at:.1f}s after the SIGKILL")
    assert re.search(r"worker-\d was killed by SIGKILL; restarting it in 1s", served.output())

    shop = UserFactory(username="shop", groups=["clients"], is_staff=False)
    token = Token.objects.create(user=shop).key
    customer = call_api(
        served.base, token, "POST", "/api/v1/customers/", {"name": "Ada", "credit_limit": "50.00"}
    )
    order_body = {
        "customer_id": customer["id"],
        "products": [1, 2],
        "total": "12.34",
        "payment_method": "credit_card",
    }
    order = call_api(served.base, token, "POST", "/api/v1/orders/", order_body)

    def decided() -> bool:
        state = call_api(served.base, token, "GET", f"/api/v1/orders/{order['id']}/")["state"]
        return state != "PENDING"

    poll(decided, timeout=60, message="the order to be decided")
    assert call_api(served.base, token, "GET", f"/api/v1/orders/{order['id']}/")["state"] == (
        "APPROVED"
    )
    with urllib.request.urlopen(served.base + "/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert [name for name in METRICS if f"# TYPE {name} " not in metrics] == []
    # Counted by the worker processes and gunicorn's, all in one exposition (multiprocess).
    assert 'bpm_step_attempts_total{definition="place_order"' in metrics
    completed = 'bpm_saga_duration_seconds_count{definition="place_order",outcome="completed"}'
    assert completed in metrics
    # Multiprocess mode writes the labels in alphabetical order.
    assert 'bpm_http_requests_total{method="POST",route="/api/v1/orders/",status="201"}' in metrics

    # A step in progress when SIGTERM arrives: its worker finishes it before exiting.
    slow = {**order_body, "payment_method": "card_slow", "total": "1.00"}
    slow_order = call_api(served.base, token, "POST", "/api/v1/orders/", slow)
    saga_id = Order.objects.get(pk=slow_order["id"]).saga_id
    running = StepRun.objects.filter(saga_id=saga_id, status=StepStatus.RUNNING)
    poll(running.exists, timeout=60, message="the card_slow payment step to run")
    step_run = running.get()
    assert served.stop() == 0
    assert_no_process_left(served)
    output = served.output()
    assert "warm shut down requested" in output
    assert "still running; killing it" not in output
    step_run.refresh_from_db()
    assert step_run.status == StepStatus.SUCCEEDED
    assert step_run.attempts == 1


# ReDoc's bundle always shows its vendor's logo from cdn.redoc.ly; the policy blocks it on purpose
# (tests/security/test_content_security_policy.py).
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
BROWSER_PAGES = [
    "/admin/",
    "/admin/dashboard/",
    "/admin/dashboard/sagas/",
    "/admin/dashboard/definitions/",
    "/admin/bpm/sagainstance/",
    "/admin/bpm/sagadefinition/add/",
    "/api/docs/",
    "/api/redoc/",
]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_page_under_serve_loads_its_hashed_assets_within_the_csp(serve, tmp_path, browser):
    """The admin, the dashboard, Swagger UI and ReDoc, with WhiteNoise's hashed names."""
    password = "a-long-test-password-1"
    User.objects.create_superuser("root", "root@example.com", password)
    env = production_env(
        tmp_path / "var",
        free_port(),
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        # localhost: chromium keeps the Secure session cookie over plain HTTP only there.
        ALLOWED_HOSTS="localhost,127.0.0.1",
        BPM_WORKERS="1",
    )
    served = start(serve, env, tmp_path / "serve.log")
    base = f"http://localhost:{served.port}"
    problems: list[str] = []
    static_paths: set[str] = set()

    def on_response(response: Response) -> None:
        if "/static/" in response.url:
            static_paths.add(response.url.split("/static/", 1)[1])
            if response.status >= 400:
                problems.append(f"{response.status} {response.url}")

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text and REDOCLY_LOGO not in message.text:
            problems.append(message.text)

    context = browser.new_context()
    page = context.new_page()
    page.on("response", on_response)
    page.on("console", on_console)
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    for path in BROWSER_PAGES:
        response = page.goto(base + path, wait_until="networkidle")
        assert response is not None and response.status == 200, path
        if path == "/api/docs/":
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            assert "bpm API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("h1", timeout=30_000)
    assert "bpm API" in page.inner_text("h1")
    context.close()
    assert problems == []
    scripts_and_styles = [path for path in static_paths if path.endswith((".js", ".css"))]
    assert scripts_and_styles, "no script or stylesheet was loaded from /static/"
    assert [path for path in scripts_and_styles if not HASHED_NAME.search(path)] == []
    assert served.stop() == 0
