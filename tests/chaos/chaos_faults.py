"""The production process set and the faults done to it: SIGKILLed workers, a flushed Redis,
terminated database connections, a killed sweeper. Every fault is logged with its time."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from dataclasses import dataclass, field

import chaos_plan as plan
import django_rq
import psycopg
from django.db import connection
from rq import Worker
from subprocesses import Processes, descendants, process_group

BUSY_WAIT = 3.0
OUTAGE_PAUSE = 0.1


@dataclass
class FaultLog:
    """What was done when (time.monotonic), and when the database was down."""

    origin: float = field(default_factory=time.monotonic)
    entries: list[tuple[float, str]] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, message: str) -> None:
        with self._lock:
            self.entries.append((time.monotonic(), message))

    def in_outage(self, start: float, end: float, margin: float = 0.5) -> bool:
        return any(start <= stop + margin and end >= begin for begin, stop in self.outages)

    def lines(self) -> list[str]:
        return [f"+{at - self.origin:7.2f}s  {message}" for at, message in self.entries]


class Stack:
    """gunicorn, rqworkers and the sweeper, as production runs them, and what kills them."""

    def __init__(self, processes: Processes, rng: random.Random, log: FaultLog) -> None:
        self.processes = processes
        self.rng = rng
        self.log = log
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.sweeper: subprocess.Popen[bytes] | None = None
        self._started = 0

    # --- processes ----------------------------------------------------------------------------

    def start_worker(self) -> str:
        self._started += 1
        name = f"chaos-worker-{self._started}"
        self.workers[name] = self.processes.worker(name)
        return name

    def start_sweeper(self) -> None:
        self._started += 1
        self.sweeper = self.processes.sweeper(interval=None, name=f"sweeper-{self._started}")

    def live_worker_names(self) -> set[str]:
        return {name for name, process in self.workers.items() if process.poll() is None}

    # --- faults -------------------------------------------------------------------------------

    def inject(self, fault: plan.Fault) -> None:
        if fault.kind == plan.KILL_WORKER:
            self.kill_busy_worker()
        elif fault.kind == plan.FLUSH_REDIS:
            django_rq.get_connection("default").flushdb()
            self.log.note("flushed the Redis database")
        elif fault.kind == plan.DB_OUTAGE:
            self.database_outage(fault.duration)
        elif fault.kind == plan.KILL_SWEEPER:
            assert self.sweeper is not None
            self.processes.kill(self.sweeper)
            self.log.note(f"SIGKILLed the sweeper (pid {self.sweeper.pid})")
        elif fault.kind == plan.RESTART_SWEEPER:
            self.start_sweeper()
            self.log.note("restarted the sweeper")
        else:
            raise ValueError(f"unknown fault {fault.kind!r}")

    def kill_busy_worker(self) -> None:
        """SIGKILL the process group of a worker that is running a job, then start another."""
        deadline = time.monotonic() + BUSY_WAIT
        busy: dict[str, str] = {}
        while not busy and time.monotonic() < deadline:
            busy = self.busy_workers()
            if not busy:
                time.sleep(0.05)
        live = sorted(self.live_worker_names())
        if busy:
            name = self.rng.choice(sorted(busy))
            doing = f"busy with {busy[name]}"
        else:
            name = self.rng.choice(live)
            doing = f"idle: no worker was busy for {BUSY_WAIT:g}s"
        self.processes.kill(self.workers[name])
        replacement = self.start_worker()
        self.log.note(f"SIGKILLed {name} ({doing}); started {replacement}")

    def busy_workers(self) -> dict[str, str]:
        """Return the live workers executing a job, with the job: RQ's worker registry first, a
        work horse (a child in a process group of its own) when Redis lost the registry."""
        live = self.live_worker_names()
        busy: dict[str, str] = {}
        try:
            for worker in Worker.all(connection=django_rq.get_connection("default")):
                job_id = worker.get_current_job_id()
                if job_id and worker.name in live:
                    busy[worker.name] = job_id
        except Exception as exc:  # a flush in between: fall back to the process tree
            self.log.note(f"reading RQ's worker registry failed: {exc}")
        for name in live - set(busy):
            for pid in descendants(self.workers[name].pid):
                if process_group(pid) == pid:
                    busy[name] = f"work horse {pid}"
        return busy

    def database_outage(self, duration: float) -> None:
        """Terminate every backend of the test database, again and again for `duration` s."""
        db = connection.settings_dict
        terminated = 0
        with psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"] or None,
            host=db["HOST"] or "localhost",
            port=db["PORT"] or 5432,
            autocommit=True,
        ) as admin:
            begin = time.monotonic()
            self.log.note(f"database outage begins ({duration:g}s)")
            while time.monotonic() < begin + duration:
                row = admin.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                    " FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                terminated += row[0] if row else 0
                time.sleep(OUTAGE_PAUSE)
            end = time.monotonic()
        self.log.outages.append((begin, end))
        self.log.note(f"database outage for {end - begin:.2f}s: terminated {terminated} backends")
