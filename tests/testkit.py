"""Test handlers with scripted behaviour (the outside world, faked), and a saga built from them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from bpm import definitions, registry
from bpm.context import StepContext
from bpm.declarations import COMPENSATABLE, PIVOT, RETRIABLE, RetryPolicy, SagaDeclaration
from bpm.declarations import StepDeclaration as Step
from bpm.errors import StepFailed
from bpm.models import SagaDefinition

FAST = RetryPolicy(max_attempts=3, initial_backoff=1, multiplier=2, max_backoff=10, jitter=0)


class World:
    """What the outside world will answer, per (step, direction), and every call it saw."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.calls: list[tuple[str, str, int]] = []
        self.effects: list[tuple[str, str]] = []

    def will(self, step: str, *outcomes: str, direction: str = "FORWARD") -> None:
        """Script the next outcomes: 'ok', 'fault', 'refuse:<CODE>'."""
        self.script[(step, direction)].extend(outcomes)

    def answer(self, ctx: StepContext) -> dict[str, Any]:
        self.calls.append((ctx.step, ctx.direction, ctx.attempt))
        queue = self.script[(ctx.step, ctx.direction)]
        outcome = queue.pop(0) if queue else "ok"
        if outcome == "fault":
            raise ConnectionError(f"{ctx.step} is unreachable")
        if outcome.startswith("refuse:"):
            raise StepFailed(outcome.split(":", 1)[1], f"{ctx.step} refused")
        self.effects.append((ctx.step, ctx.direction))
        return {"done": ctx.step, "key": ctx.idempotency_key}


world = World()


@registry.handler("test.remote")
def remote(ctx: StepContext) -> dict[str, Any]:
    return world.answer(ctx)


@registry.handler("test.local", transactional=True)
def local(ctx: StepContext) -> dict[str, Any]:
    return world.answer(ctx)


def declare(name: str, *steps: Step) -> SagaDefinition:
    """Sync a test saga made of these steps and return its definition row."""
    definition, _ = definitions.sync_declaration(
        SagaDeclaration(name=name, title=name, steps=steps, input_schema={"type": "object"})
    )
    return definition


def three_steps(kind_of_last: str = COMPENSATABLE, handler: str = "test.remote") -> SagaDefinition:
    """Return a saga a → b → c, the first two compensatable."""
    last_compensation = handler if kind_of_last == COMPENSATABLE else ""
    return declare(
        f"three_{kind_of_last.lower()}_{handler.split('.')[1]}",
        Step("a", handler, handler, retry=FAST),
        Step("b", handler, handler, retry=FAST),
        Step("c", handler, last_compensation, kind=kind_of_last, retry=FAST),
    )


def with_pivot() -> SagaDefinition:
    """Return a saga a → pivot → after (retriable)."""
    return declare(
        "with_pivot",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("pivot", "test.remote", kind=PIVOT, retry=FAST),
        Step("after", "test.remote", kind=RETRIABLE, retry=FAST),
    )


@pytest.fixture
def the_world() -> Iterator[World]:
    """Return a fresh scripted outside world."""
    global world
    world.__init__()  # type: ignore[misc]
    yield world
