"""Step handlers for fault tests, registered in the test process and in worker subprocesses.

Run as `python -m faultkit <command> ...` (with tests/e2e on PYTHONPATH and the project root as
the working directory) it is manage.py with these handlers registered too.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from bpm import registry
from bpm.context import StepContext

WAIT_LIMIT = 120.0


@registry.handler("faults.wait_for_release", transactional=True)
def wait_for_release(ctx: StepContext) -> dict[str, Any]:
    """Say it has entered (a file), then hold the step's transaction open until released."""
    Path(ctx.input["entered"]).write_text(f"{os.getpid()} attempt {ctx.attempt}\n")
    release = Path(ctx.input["release"])
    deadline = time.monotonic() + WAIT_LIMIT
    while not release.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} was never created")
        time.sleep(0.05)
    return {"released_on_attempt": ctx.attempt}


@registry.handler("faults.fail_first_attempt")
def fail_first_attempt(ctx: StepContext) -> dict[str, Any]:
    """Fail the first attempt with a technical fault, so the retry is delayed by its backoff."""
    if ctx.attempt == 1:
        raise ConnectionError("the first attempt always fails")
    return {"succeeded_on_attempt": ctx.attempt}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *sys.argv[1:]])
