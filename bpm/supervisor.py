"""Supervision of the product's processes on one machine: what `runstack` and `serve` share.

Each child runs in its own process group, its output printed line by line under its name. A stop
signal (SIGINT, SIGTERM, SIGHUP) reaches only the supervisor, which passes SIGTERM on to each
child exactly once: a second one would make an RQ worker abandon its job, and gunicorn already
stops gracefully on the first. What is still running after the stop timeout is killed, together
with every process it forked (an RQ work horse leaves its parent's process group).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Protocol

POLL_INTERVAL = 0.2
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

WriteLine = Callable[[str, str], None]


class Stream(Protocol):
    """Where children's lines go: a text file, or a management command's stdout."""

    def write(self, msg: str, /) -> object: ...

    def flush(self) -> None: ...


def manage_py(*args: str) -> list[str]:
    """Return the command line that runs `manage.py <args>` with this interpreter."""
    return [sys.executable, "manage.py", *args]


class Child:
    """One supervised process whose output is printed line by line under its name.

    `argv` is either the command line or a function returning it, called at every start (an RQ
    worker needs a fresh name when it is restarted: the dead one's stays registered for a while).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str] | Callable[[], Sequence[str]],
        *,
        may_finish: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        # A child that may finish is only a failure when it exits non-zero.
        self.may_finish = may_finish
        self.process: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None
        self.started_at = 0.0
        self.starts = 0

    def command_line(self) -> list[str]:
        """Return the command line the next start runs."""
        return list(self.argv() if callable(self.argv) else self.argv)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self, *, cwd: Path, env: dict[str, str], write: WriteLine) -> None:
        """Start the process in its own process group and a thread that prefixes its output."""
        self.process = subprocess.Popen(
            self.command_line(),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # Its own group: a Ctrl-C in the terminal reaches only the supervisor, which stops
            # each child exactly once.
            process_group=0,
        )
        self.started_at = time.monotonic()
        self.starts += 1
        self.reader = threading.Thread(
            target=self._pump, args=(write,), name=f"supervisor-{self.name}", daemon=True
        )
        self.reader.start()

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM to the process itself, not its group)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def kill(self) -> None:
        """Kill the process, everything it forked, and everything left in its process group."""
        if self.process is None:
            return
        forked = descendants(self.process.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in forked:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def join_output(self, timeout: float = 1.0) -> None:
        """Wait briefly for the last lines of output to be printed."""
        if self.reader is not None:
            self.reader.join(timeout)

    def _pump(self, write: WriteLine) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            write(self.name, line.rstrip("\n"))


class StopRequest:
    """Records SIGINT/SIGTERM/SIGHUP: the first asks for a clean stop, the next one forces it."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.forced = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            self.forced.set()
        self.requested.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle the stop signals while the block runs, then restore the previous handlers."""
        previous = {signum: signal.signal(signum, self) for signum in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


class Backoff:
    """The wait before restarting a child that died: doubling from `first` up to `longest`,
    back to `first` once the child had run for `stable` seconds."""

    def __init__(self, first: float = 1.0, longest: float = 30.0, stable: float = 60.0) -> None:
        self.first = first
        self.longest = longest
        self.stable = stable
        self.failures = 0

    def after(self, ran_for: float) -> float:
        """Return how long to wait before the next start of a child that ran for `ran_for`."""
        if ran_for >= self.stable:
            self.failures = 0
        delay = min(self.first * 2**self.failures, self.longest)
        self.failures += 1
        return delay


class Supervisor:
    """Starts children, watches them until a stop signal, and stops them all.

    With `restart`, a child that dies is started again after its backoff (production: `serve`);
    without, the first unexpected death stops everything (development: `runstack`).
    """

    def __init__(
        self,
        children: list[Child],
        *,
        cwd: Path,
        env: dict[str, str],
        write: WriteLine,
        report: Callable[[str], None],
        stop_timeout: float,
        restart: bool = False,
    ) -> None:
        self.children = children
        self.cwd = cwd
        self.env = env
        self.write = write
        self.report = report
        self.stop_timeout = stop_timeout
        self.restart = restart
        self.stop = StopRequest()
        self.backoffs = {child.name: Backoff() for child in children}

    def run(self) -> Child | None:
        """Run until a stop signal; return the child whose death stopped everything, if one did."""
        with self.stop.installed():
            try:
                for child in self.children:
                    child.start(cwd=self.cwd, env=self.env, write=self.write)
                return self.watch()
            finally:
                self.stop_all()

    def watch(self) -> Child | None:
        """Wait for a stop signal, restarting or giving up on a child that dies."""
        watched = list(self.children)
        restarts: dict[str, float] = {}
        while not self.stop.requested.wait(POLL_INTERVAL):
            now = time.monotonic()
            for child in list(watched):
                due = restarts.get(child.name)
                if due is not None:
                    if now >= due:
                        del restarts[child.name]
                        child.start(cwd=self.cwd, env=self.env, write=self.write)
                        self.report(f"{child.name} restarted (start {child.starts}).")
                    continue
                code = child.returncode
                if code is None:
                    continue
                child.join_output()
                if child.may_finish and code == 0:
                    self.report(f"{child.name} finished.")
                    watched.remove(child)
                    continue
                if not self.restart:
                    self.report(f"{child.name} {describe_exit(code)}.")
                    return child
                # Whatever it forked (a work horse) must not outlive it.
                child.kill()
                delay = self.backoffs[child.name].after(now - child.started_at)
                restarts[child.name] = now + delay
                self.report(f"{child.name} {describe_exit(code)}; restarting it in {delay:g}s.")
        return None

    def stop_all(self) -> None:
        """Send SIGTERM to every child, wait up to the stop timeout, then kill what is left."""
        running = [child for child in self.children if child.returncode is None]
        if running:
            self.report(f"Stopping {', '.join(child.name for child in running)}...")
        for child in running:
            child.terminate()
        deadline = time.monotonic() + self.stop_timeout
        while (
            any(child.returncode is None for child in running)
            and time.monotonic() < deadline
            and not self.stop.forced.is_set()
        ):
            time.sleep(0.1)
        for child in running:
            if child.returncode is None:
                self.report(f"{child.name} is still running; killing it.")
            # Also when it exited: a work horse it left behind is killed with its group.
            child.kill()
        for child in self.children:
            child.join_output()


def descendants(pid: int) -> list[int]:
    """Return the ids of every live process below `pid`, read from /proc (empty elsewhere)."""
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


def describe_exit(code: int | None) -> str:
    """Return how a process ended, in words."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def rq_worker(name: str, queues: Sequence[str]) -> Child:
    """Return an RQ worker on `queues` that registers under a fresh name at every start."""

    def argv() -> list[str]:
        # A SIGKILLed worker stays registered until its key expires: a restart needs a new name.
        rq_name = f"{name}-{uuid.uuid4().hex[:6]}"
        return manage_py("rqworker", "--with-scheduler", "--name", rq_name, *queues)

    return Child(name, argv)


def prefixed_writer(stream: Stream, children: Sequence[Child]) -> WriteLine:
    """Return a writer that prints each child's line under its name, one line at a time."""
    width = max(len(child.name) for child in children) + 2
    lock = threading.Lock()

    def write(name: str, line: str) -> None:
        with lock:
            stream.write(f"{f'[{name}]':<{width}} {line}\n")
            stream.flush()

    return write
