"""The RQ job behind every doorbell: take ids, call the engine."""

from __future__ import annotations

import time

from django.conf import settings

from bpm import engine


def ring(run_id: int, token: str) -> None:
    """Run the step behind this doorbell, then continue inline while the budget allows."""
    started = time.monotonic()
    steps = 1
    doorbell = engine.execute(run_id, token, inline=_budget_left(steps, started))
    while doorbell is not None:
        steps += 1
        doorbell = engine.execute(
            doorbell.run_id, doorbell.token, inline=_budget_left(steps, started)
        )


def _budget_left(steps: int, started: float) -> bool:
    elapsed = time.monotonic() - started
    return steps < settings.BPM_INLINE_MAX_STEPS and elapsed < settings.BPM_INLINE_MAX_SECONDS
