"""The demo's stand-in for an outside fraud service, reached by a task-token step.

A real fraud service would get the token in an HTTP call and answer later with
POST /api/v1/tasks/<token>/succeed/ or /fail/. This one lives in the worker's process and
answers at once, before the action returns: the engine keeps that early answer and applies it
when the action's result is recorded (docs/processes.md, "Waits").
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from bpm import answers, registry
from bpm.context import StepContext
from bpm.errors import Conflict

log = logging.getLogger(__name__)

# Orders above this are refused by the demo's fraud desk.
SUSPICIOUS_TOTAL = Decimal("50000.00")


def fraud_score(total: Decimal) -> int:
    """Return a made-up risk score from 0 to 99: larger orders are riskier."""
    return min(99, int(total // 1000))


@registry.handler("demo.screen_for_fraud")
def screen_for_fraud(ctx: StepContext) -> dict[str, Any]:
    """Hand the order and the task token to the (in-process) fraud desk, which answers it."""
    total = Decimal(ctx.input["total"])
    try:
        if total > SUSPICIOUS_TOTAL:
            answers.token_fail(
                token=ctx.task_token,
                code="FRAUD_SUSPECTED",
                message=f"an order of {total} is above what the fraud desk lets through",
            )
        else:
            answers.token_succeed(
                token=ctx.task_token, output={"score": fraud_score(total), "verdict": "pass"}
            )
    except Conflict:
        # A retried attempt: the desk answered this token already, and the answer is kept.
        log.info("the fraud desk had answered this order's token already")
    return {"sent_to": "demo fraud desk"}
