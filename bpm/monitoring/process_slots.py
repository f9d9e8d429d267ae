"""Which files a process writes its Prometheus samples to, in multiprocess mode.

prometheus_client names each process's files after its pid, and keeps the files of dead processes
so their counters still count. bpm's worker runs the engine's jobs in its own process but forks
a work horse for any other job, so by pid the directory would gain two files per such job and
every scrape would read them all. Instead each process
holds a numbered slot (an exclusive flock on `slot-<n>.lock`) for its life and writes to the files
of that slot; a slot is free again when its holder dies, and the next process continues the same
counters. The number of files is bounded by how many processes ever run at once, and two
processes never write to the same file (the lock is what guarantees it).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import IO

from bpm.private_dir import make_private

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
DIRECTORY_NAME = "prometheus"

_held: tuple[int, str, IO[bytes]] | None = None
_installed = False


def install() -> None:
    """Make every metric created from now on in this process write to its slot's files.

    Called from the settings, before any app is loaded: django-rq creates a metric of its own
    when the admin autodiscovers it, and a metric keeps the value class it was created with.
    Without PROMETHEUS_MULTIPROC_DIR it does nothing (metrics stay in the process's memory).
    """
    global _installed
    if _installed or directory() is None:
        return
    from prometheus_client import values

    # One MultiProcessValue per process: two would open the same files twice.
    values.ValueClass = values.MultiProcessValue(process_identifier=identity)
    _installed = True


def directory() -> Path | None:
    """Return the multiprocess directory, or None when metrics are per process."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "")
    return Path(value) if value else None


def prepare(var_dir: Path) -> Path:
    """Empty (or create) the multiprocess directory under `var_dir` and return it.

    Whoever starts the processes calls this before starting any of them and passes the path on
    in PROMETHEUS_MULTIPROC_DIR: files left from an earlier run would be added to this one's.
    """
    path = var_dir / DIRECTORY_NAME
    if path.exists():
        shutil.rmtree(path)
    make_private(path)
    return path


def identity() -> str:
    """Return this process's slot ("slot3"), taking the lowest free one on first use.

    Called on every sample written, so it is a pid comparison unless the process just forked.
    """
    global _held
    pid = os.getpid()
    if _held is None or _held[0] != pid:
        # A forked child inherits the parent's lock (the same open file): it takes its own.
        _held = (pid, *_take_free_slot())
    return _held[1]


def _take_free_slot() -> tuple[str, IO[bytes]]:
    path = directory()
    if path is None:
        raise RuntimeError(f"{ENVIRONMENT_VARIABLE} is not set: there is no slot to take")
    # Recreated if someone emptied it by removing it: a metric must never fail a request.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    number = 0
    while True:
        lock = (path / f"slot-{number}.lock").open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            number += 1
            continue
        return f"slot{number}", lock
