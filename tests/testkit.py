"""Test handlers with scripted behaviour (the outside world, faked), and a saga built from them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import django_rq
import pytest
from django.conf import settings

from bpm import clock, definitions, dispatch, registry
from bpm.context import StepContext
from bpm.declarations import COMPENSATABLE, PIVOT, RETRIABLE, RetryPolicy, SagaDeclaration
from bpm.declarations import StepDeclaration as Step
from bpm.errors import StepFailed
from bpm.models import ACTIVE_STATUSES, SagaDefinition, SagaInstance, StepRun, StepStatus

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


def work() -> None:
    """Run an in-process burst worker until the queues are empty."""
    worker = django_rq.get_worker(*settings.BPM_QUEUES, worker_class="rq.worker.SimpleWorker")
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")


def drain(max_rounds: int = 100) -> None:
    """Work until no active saga has a run waiting, moving the fake clock over backoffs."""
    for _ in range(max_rounds):
        work()
        waiting = list(
            StepRun.objects.filter(
                status=StepStatus.PENDING, saga__status__in=ACTIVE_STATUSES
            ).select_related("step")
        )
        if not waiting:
            return
        earliest = min(run.due_at for run in waiting)
        if earliest > clock.now():
            clock.advance((earliest - clock.now()).total_seconds())
        for run in waiting:
            if run.due_at <= clock.now():
                dispatch.ring_now(
                    run.id, str(run.token), run.due_at, run.step.timeout, run.step.queue
                )
    raise AssertionError("sagas still running after draining")


def fresh(saga: SagaInstance) -> SagaInstance:
    """Return the saga as the database has it now."""
    return SagaInstance.objects.get(pk=saga.pk)
