"""The job behind every doorbell: take ids, call the engine, continue inline while it may.

No RQ here (bpm.dispatch enqueues it by dotted path): a job function is a plain function."""

from __future__ import annotations

import time

from django.conf import settings

from bpm import alert_delivery, batches, dispatch, engine


def answer_doorbell(run_id: int, token: str) -> None:
    """Run the step behind this doorbell, then continue inline while the budget allows.

    The steps of one job share the saga's runs as read by the first (engine.SagaRows), so a step
    continued inline reads only its own run and the saga row.
    """
    started = time.monotonic()
    steps = 1
    following = engine.execute(run_id, token, inline=_budget_left(steps, started))
    while following is not None:
        steps += 1
        following = engine.execute(
            following.run_id,
            following.token,
            view=following.view,
            inline=_budget_left(steps, started),
        )


# The name doorbells enqueued before the rename still carry.
ring = answer_doorbell


def _budget_left(steps: int, started: float) -> bool:
    if dispatch.stopping():  # the worker is shutting down: the next step goes to another
        return False
    elapsed = time.monotonic() - started
    return steps < settings.BPM_INLINE_MAX_STEPS and elapsed < settings.BPM_INLINE_MAX_SECONDS


def answer_alert_doorbell(notice_id: int, token: str) -> None:
    """Deliver the alert notice behind this doorbell (bpm/alert_delivery.py)."""
    alert_delivery.deliver(notice_id, token)


def work_batch(batch_id: int) -> None:
    """Work through a batch repair's sagas (bpm.batches): the job behind its doorbell."""
    batches.batch_work(batch_id=batch_id)
