"""Real processes: rqworker and sweeper subprocesses against the test database and Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

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

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(
            name, "rqworker", "--with-scheduler", "--name", name, *settings.BPM_QUEUES
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
