"""Handlers for the parallel-branches e2e tests, registered in the test and in its workers.

A step naps for `input["nap"]` seconds, so two steps that run at once overlap measurably; `d`
refuses when the input asks it to. `python tests/e2e/parallel_handlers.py <name>` runs an
rqworker that has these handlers.
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

from bpm import registry
from bpm.context import StepContext
from bpm.errors import StepFailed


def _nap(ctx: StepContext) -> dict[str, Any]:
    started = time.time()
    if ctx.step == "d" and ctx.direction == "FORWARD" and ctx.input.get("refuse_d"):
        raise StepFailed("NO", "d refuses")
    time.sleep(float(ctx.input.get("nap", 0)))
    return {"started": started, "finished": time.time(), "pid": os.getpid()}


registry.handler("e2e.nap")(_nap)


def main(name: str) -> None:
    from django.conf import settings
    from django.core.management import call_command

    call_command("rqworker", "--with-scheduler", "--name", name, *settings.BPM_QUEUES)


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")
    django.setup()
    main(sys.argv[1])
