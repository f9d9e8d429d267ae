"""Sagas in the states the saga page cares about, and clients logged in as each role."""

from __future__ import annotations

from typing import Any

from django.test import Client
from factories import UserFactory
from testkit import fresh, three_steps, with_pivot

from bpm import clock, engine, services, sweeper
from bpm.models import SagaInstance, SagaStatus, StepRun, StepStatus


def stuck_after_pivot(
    world: Any, drained: Any, input: dict[str, Any] | None = None
) -> SagaInstance:
    """Return a saga stuck going forward: its step after the pivot ran out of retries."""
    with_pivot()
    world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input=input or {}, actor="test")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.STUCK
    return saga


def stalled_before_pivot(settings: Any, finished: int = 0) -> SagaInstance:
    """Return a saga the sweeper flagged as making no progress after `finished` steps ran."""
    settings.BPM_STALL_AFTER = 60
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    for _ in range(finished):
        # Run the step that is due in this process; its successor waits for a worker.
        run = StepRun.objects.get(saga=saga, status=StepStatus.PENDING)
        engine.execute(run.id, str(run.token))
    clock.advance(120)
    assert sweeper.flag_stalled() == 1
    return fresh(saga)


def stuck_compensating(world: Any, drained: Any) -> SagaInstance:
    """Return a saga whose compensation of step b ran out of retries."""
    world.will("c", "refuse:NO")
    world.will("b", "fault", "fault", "fault", direction="COMPENSATION")
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.STUCK
    return saga


def client_as(username: str, *groups: str, **client_options: Any) -> Client:
    """Return a client logged in as a new staff user in the named groups."""
    client = Client(**client_options)
    client.force_login(UserFactory(username=username, groups=list(groups)))
    return client


def saga_url(saga: SagaInstance) -> str:
    return f"/admin/dashboard/sagas/{saga.id}/"


def action_url(saga: SagaInstance, action: str) -> str:
    return f"{saga_url(saga)}{action}/"
