"""Sagas with wait steps, for the waits tests: a handler that keeps the task tokens it is given."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from testkit import FAST, declare, world

from bpm import registry
from bpm.context import StepContext
from bpm.declarations import PIVOT, RETRIABLE
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaDefinition

# The tokens handed to "test.hand_token", in order, as an outside service would receive them.
handed: list[str] = []

FORM = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "title": "Approved"},
        "note": {"type": "string", "maxLength": 50},
        "limit": {"type": "integer", "minimum": 0},
    },
    "required": ["approved"],
    "additionalProperties": False,
}


@registry.handler("test.hand_token")
def hand_token(ctx: StepContext) -> dict[str, Any]:
    handed.append(ctx.task_token)
    world.answer(ctx)
    return {"handed": True}


@registry.handler("test.answer_at_once")
def answer_at_once(ctx: StepContext) -> dict[str, Any]:
    """A service that answers the token before the call that handed it on returns."""
    from bpm import answers

    handed.append(ctx.task_token)
    answers.token_succeed(token=ctx.task_token, output={"early": ctx.attempt})
    world.answer(ctx)
    return {"handed": True}


def signal_saga(timeout: float = 60) -> SagaDefinition:
    """a → wait for "go" → pivot → after."""
    return declare(
        "signalled",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("wait_go", "", wait={"signal": "go", "timeout": timeout}),
        Step("pivot", "test.remote", kind=PIVOT, retry=FAST),
        Step("after", "test.remote", kind=RETRIABLE, retry=FAST),
    )


def token_saga(timeout: float = 60, action: str = "test.hand_token") -> SagaDefinition:
    """a → hand a token on and wait for it → b."""
    return declare(
        f"tokened_{action.split('.')[1]}",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step(
            "check",
            action,
            "test.remote",
            retry=FAST,
            wait={"task_token": {}, "timeout": timeout},
        ),
        Step("b", "test.remote", "test.remote", retry=FAST),
    )


def task_saga(timeout: float = 3600, group: str = "reviewers") -> SagaDefinition:
    """a → a person of `group` reviews → b."""
    Group.objects.get_or_create(name=group)
    return declare(
        "reviewed",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step(
            "review",
            "",
            wait={"task": {"group": group, "title": "Review it", "form": FORM}, "timeout": timeout},
        ),
        Step("b", "test.remote", "test.remote", retry=FAST),
    )
