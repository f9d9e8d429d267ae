"""Handlers for the e2e tests of engine jobs run in the worker's own process.

Each step returns the pid it ran in and, on PostgreSQL, the backend pid of its database
connection. A step naps `input["naps"][step]` seconds, unless its worker runs with E2E_NO_NAPS
set (a second worker that takes the step over); `e2e.hang` swallows its step timeout on
its first attempt, as a handler that hangs in Python would, until RQ's job timeout stops it.
`python tests/e2e/inprocess_handlers.py <name>` runs an rqworker that has these handlers.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # Run as a script: this checkout's code, not whichever one the virtualenv points at.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bpm import registry, timeout
from bpm.context import StepContext


def _where(ctx: StepContext) -> dict[str, Any]:
    from django.db import connection

    if not os.environ.get("E2E_NO_NAPS"):
        time.sleep(float(ctx.input.get("naps", {}).get(ctx.step, 0)))
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid if connection.vendor == "postgresql" else None
    return {"pid": os.getpid(), "backend": backend, "finished": time.time()}


def _hang(ctx: StepContext) -> dict[str, Any]:
    if ctx.attempt == 1:
        while True:  # swallows its StepTimedOut: only RQ's job timeout gets it out
            try:
                time.sleep(60)
            except timeout.StepTimedOut:
                continue
    return {"pid": os.getpid()}


registry.handler("e2e.where", transactional=True)(_where)
registry.handler("e2e.where_at_least_once")(_where)
registry.handler("e2e.hang")(_hang)


def main(name: str) -> None:
    from django.conf import settings
    from django.core.management import call_command

    call_command("rqworker", "--with-scheduler", "--name", name, *settings.BPM_QUEUES)


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")
    django.setup()
    main(sys.argv[1])
