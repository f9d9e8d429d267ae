"""Real processes against the test database and Redis: manage.py commands, gunicorn, polling.

Shared by tests/e2e/ and tests/chaos/. Every process starts in its own session (process group),
logs to a file in the test's directory and is stopped when the test ends.
"""

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
from collections.abc import Callable, Sequence
from pathlib import Path

import gunicorn
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """Return a DATABASE_URL that points a subprocess at the test database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def parents_of_all() -> dict[int, list[int]]:
    """Return every live process's children by parent id, read from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return parents


def descendants(pid: int) -> list[int]:
    """Return the ids of every live process below `pid`, read from /proc."""
    parents = parents_of_all()
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def process_group(pid: int) -> int | None:
    """Return the process group of `pid`, or None when it has exited."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


class Processes:
    """Starts subprocesses in their own process groups and stops them all.

    `overrides` are added to the environment every subprocess gets (on top of the test's own).
    """

    def __init__(self, log_dir: Path, overrides: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.overrides = dict(overrides or {})
        self.started: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if settings.REDIS_URL is not None:  # else REDIS_SENTINELS and the rest pass through
            env["REDIS_URL"] = settings.REDIS_URL
        env.update(
            DATABASE_URL=database_url(),
            BPM_REDRIVE_GRACE="1",
            BPM_SWEEP_INTERVAL="0.5",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.overrides)
        return env

    def run(self, name: str, argv: Sequence[str], **env: str) -> subprocess.Popen[bytes]:
        """Start `argv` in the checkout, logging to `<name>.log`, with `env` added."""
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={**self.env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start `python manage.py <args>`, with `env` added to its environment."""
        return self.run(name, [sys.executable, "manage.py", *args], **env)

    def worker(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        return self.start(
            name, "rqworker", "--with-scheduler", "--name", name, *settings.BPM_QUEUES, **env
        )

    def sweeper(
        self, interval: float | None = 0.5, name: str = "sweeper"
    ) -> subprocess.Popen[bytes]:
        """Start `sweep --forever`, every `interval` seconds (None: BPM_SWEEP_INTERVAL's)."""
        every = [] if interval is None else ["--interval", f"{interval:g}"]
        return self.start(name, "sweep", "--forever", *every)

    def gunicorn(self, port: int, workers: int = 2, name: str = "web") -> subprocess.Popen[bytes]:
        """Start `gunicorn bpm.wsgi` on 127.0.0.1:`port`, as production runs the web app."""
        executable = Path(sys.executable).with_name("gunicorn")
        argv = [str(executable), "bpm.wsgi", "--bind", f"127.0.0.1:{port}"]
        options = ["--workers", str(workers), "--timeout", "60"]
        if gunicorn.version_info >= (25, 1):
            # Its control socket's default path is shared by every gunicorn of the user.
            options.append("--no-control-socket")
        return self.run(name, [*argv, *options])

    @staticmethod
    def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process, its group and everything it forked (RQ's work horse
        moves to a process group of its own, so the group alone is not enough)."""
        victims = [*descendants(process.pid), process.pid]
        group = process_group(process.pid)
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        process.wait(timeout=15)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                self.kill(process, signal.SIGTERM)


def poll(condition: Callable[[], bool], timeout: float = 60, message: str = "") -> None:
    """Poll until `condition` holds, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(url: str, server: subprocess.Popen[bytes]) -> bool:
    """Say whether the server answers `url`; fail at once if it has exited."""
    if server.poll() is not None:
        raise AssertionError(f"the web server exited with {server.returncode}; see web.log below")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        raise AssertionError(
            f"the web server answered {url} with {exc.code} {exc.reason}"
        ) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def print_logs(log_dir: Path, tail: int = 3000) -> None:
    """Print the end of every subprocess log, for a failing test's report."""
    for log in sorted(log_dir.glob("*.log")):
        text = log.read_text(errors="replace")[-tail:]
        print(f"--- {log.name} ---\n{text}")
