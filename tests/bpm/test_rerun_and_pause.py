"""Rerun from a step (of a COMPLETED or STUCK saga) and pause/resume of a saga or a definition."""

from __future__ import annotations

from typing import Any

import pytest
from testkit import declare, drain, fresh, three_steps, with_pivot, work, world

from bpm import clock, engine, registry, services, sweeper
from bpm.context import StepContext
from bpm.declarations import RetryPolicy
from bpm.declarations import StepDeclaration as Step
from bpm.errors import Conflict, InvalidInput
from bpm.models import (
    Barrier,
    EventType,
    PauseScope,
    SagaEvent,
    SagaInstance,
    SagaStatus,
    StepRun,
    StepStatus,
)

pytestmark = pytest.mark.django_db(transaction=True)


def completed(handler: str = "test.remote") -> SagaInstance:
    saga = services.saga_start(
        definition=three_steps(handler=handler).name, input={"to": "old@example.com"}, actor="t"
    )
    drain()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    return saga


def forward_effects() -> list[str]:
    return [step for step, direction in world.effects if direction == "FORWARD"]


# --- rerun --------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", ["test.remote", "test.local"])
def test_a_completed_saga_reruns_its_last_step_under_a_new_idempotency_key(the_world, handler):
    saga = completed(handler)
    first_key = saga.context["c"]["key"]
    services.saga_rerun(saga_id=saga.id, step="c", reason="address corrected", actor="user:olga")
    drain()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    # The handler really ran again (a transactional one is not stopped by the barrier).
    assert forward_effects() == ["a", "b", "c", "c"]
    assert saga.context["c"]["key"] == f"{first_key}:rerun-1"
    if handler == "test.local":
        assert Barrier.objects.filter(saga=saga, step="c#rerun-1").exists()


def test_a_rerun_runs_the_step_and_every_later_one_and_records_who_and_why(the_world):
    saga = completed()
    result = services.saga_rerun(
        saga_id=saga.id,
        step="b",
        reason="corrected",
        actor="user:olga",
        input={"to": "new@example.com"},
    )
    assert result.describe() == ["run b", "run c"]
    drain()
    saga = fresh(saga)
    assert forward_effects() == ["a", "b", "c", "b", "c"]
    assert saga.input == {"to": "new@example.com"}
    (audit,) = SagaEvent.objects.filter(saga=saga, type=EventType.OPERATOR_RERUN)
    assert (audit.actor, audit.message, audit.data["step"]) == ("user:olga", "corrected", "b")
    assert SagaEvent.objects.filter(saga=saga, type=EventType.SAGA_REOPENED).count() == 1
    assert SagaEvent.objects.filter(saga=saga, type=EventType.STEP_SUPERSEDED).count() == 2


def test_a_preview_changes_nothing_and_needs_no_reason(the_world):
    saga = completed()
    result = services.saga_rerun(saga_id=saga.id, step="a", preview=True, actor="user:olga")
    assert result.describe() == ["run a", "run b", "run c"]
    assert not result.applied
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert StepRun.objects.filter(saga=saga).count() == 3


def test_a_rerun_needs_a_reason_and_a_known_step(the_world):
    saga = completed()
    with pytest.raises(InvalidInput, match="reason"):
        services.saga_rerun(saga_id=saga.id, step="c", reason=" ", actor="user:olga")
    with pytest.raises(InvalidInput, match="no step 'zz'"):
        services.saga_rerun(saga_id=saga.id, step="zz", reason="x", actor="user:olga")


def test_a_running_saga_cannot_be_rerun(the_world):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="t")
    with pytest.raises(Conflict, match="RUNNING, not STUCK or COMPLETED"):
        services.saga_rerun(saga_id=saga.id, step="a", reason="x", actor="user:olga")


def test_a_stuck_saga_reruns_after_its_pivot_but_never_the_pivot(the_world):
    with_pivot()
    world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={}, actor="t")
    drain()
    assert fresh(saga).status == SagaStatus.STUCK
    for step in ("a", "pivot"):
        with pytest.raises(Conflict, match="pivot step 'pivot' has committed"):
            services.saga_rerun(saga_id=saga.id, step=step, reason="x", actor="user:olga")
    services.saga_rerun(saga_id=saga.id, step="after", reason="fixed", actor="user:olga")
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED


# --- pause and resume ---------------------------------------------------------------------


def test_a_paused_saga_starts_no_step_and_resumes_where_it_was(the_world):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="t")
    services.saga_pause(saga_id=saga.id, reason="checking", actor="user:olga")
    work()
    assert world.calls == []
    assert StepRun.objects.get(saga=saga).status == StepStatus.PENDING
    services.saga_resume(saga_id=saga.id, reason="checked", actor="user:olga")
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED


@registry.handler("test.pausing")
def pausing(ctx: StepContext) -> dict[str, Any]:
    """Pause its own saga while it runs, as an operator would at that moment."""
    services.saga_pause(saga_id=ctx.saga_id, reason="hold", actor="user:olga")
    return {"paused": True}


def test_a_running_step_finishes_but_its_successor_is_not_scheduled(the_world):
    declare(
        "pausing",
        Step("first", "test.pausing", retry=RetryPolicy()),
        Step("second", "test.remote", retry=RetryPolicy()),
    )
    saga = services.saga_start(definition="pausing", input={}, actor="t")
    work()
    runs = {run.step.name: run for run in StepRun.objects.filter(saga=saga)}
    assert runs["first"].status == StepStatus.SUCCEEDED
    assert "second" not in runs
    services.saga_resume(saga_id=saga.id, reason="go", actor="user:olga")
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED


def test_the_sweeper_neither_rings_nor_flags_a_paused_saga(the_world, settings):
    settings.BPM_STALL_AFTER = 60
    saga = services.saga_start(definition=three_steps().name, input={}, actor="t")
    services.saga_pause(saga_id=saga.id, reason="hold", actor="user:olga")
    clock.advance(3600)
    report = sweeper.sweep_once()
    assert (report.redriven, report.stalled, report.timed_out) == (0, 0, 0)
    assert fresh(saga).status == SagaStatus.RUNNING


def test_pause_and_resume_conflict_when_they_change_nothing(the_world):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="t")
    with pytest.raises(Conflict, match="not paused"):
        services.saga_resume(saga_id=saga.id, reason="x", actor="user:olga")
    services.saga_pause(saga_id=saga.id, reason="x", actor="user:olga")
    with pytest.raises(Conflict, match="already paused"):
        services.saga_pause(saga_id=saga.id, reason="x", actor="user:olga")
    with pytest.raises(InvalidInput, match="reason"):
        services.saga_resume(saga_id=saga.id, reason="", actor="user:olga")


def test_a_paused_definition_holds_its_sagas_and_new_ones_until_resumed(the_world):
    definition = three_steps()
    running = services.saga_start(definition=definition.name, input={}, actor="t")
    own = services.saga_start(definition=definition.name, input={}, actor="t")
    services.saga_pause(saga_id=own.id, reason="mine", actor="user:olga")
    preview = services.definition_pause(
        name=definition.name, version=definition.version, preview=True, actor="user:olga"
    )
    assert preview.sagas == 1 and not preview.applied
    services.definition_pause(
        name=definition.name, version=definition.version, reason="outage", actor="user:olga"
    )
    later = services.saga_start(definition=definition.name, input={}, actor="t")
    assert fresh(later).paused == PauseScope.DEFINITION
    work()
    assert world.calls == []
    with pytest.raises(Conflict, match="resume the definition"):
        services.saga_resume(saga_id=later.id, reason="x", actor="user:olga")
    resumed = services.definition_resume(
        name=definition.name, version=definition.version, reason="over", actor="user:olga"
    )
    assert resumed.sagas == 2
    # Paused on its own, it stays paused.
    assert fresh(own).paused == PauseScope.SAGA
    services.saga_resume(saga_id=own.id, reason="mine done", actor="user:olga")
    drain()
    assert {fresh(saga).status for saga in (running, later, own)} == {SagaStatus.COMPLETED}


class WorkerDied(BaseException):
    """Stands in for SIGKILL (tests/sagas/test_payment_faults.py): no `except Exception` sees it."""


@registry.handler("test.dies_paused")
def dies_paused(ctx: StepContext) -> dict[str, Any]:
    """The saga is paused while this step runs, then the worker dies before recording it."""
    if ctx.attempt == 1:
        services.saga_pause(saga_id=ctx.saga_id, reason="hold", actor="user:olga")
        raise WorkerDied
    return {}


def test_a_worker_dying_in_a_step_of_a_paused_saga_leaves_it_to_the_resume(the_world):
    declare(
        "dies_paused",
        Step("first", "test.dies_paused", retry=RetryPolicy(max_attempts=3, jitter=0)),
        Step("second", "test.remote"),
    )
    saga = services.saga_start(definition="dies_paused", input={}, actor="t")
    run = StepRun.objects.get(saga=saga)
    with pytest.raises(WorkerDied):
        engine.execute(run.id, str(run.token))
    clock.advance(3600)
    sweeper.sweep_once()
    run.refresh_from_db()
    # The lease expired into a failed attempt; the retry waits for the resume, rung by no one.
    assert (run.status, run.attempts) == (StepStatus.PENDING, 1)
    work()
    run.refresh_from_db()
    assert run.attempts == 1
    services.saga_resume(saga_id=saga.id, reason="go", actor="user:olga")
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED


def test_a_resume_that_dies_halfway_changed_nothing_and_can_be_done_again(the_world):
    from django.db import connection

    definition = three_steps()
    sagas = [services.saga_start(definition=definition.name, input={}, actor="t") for _ in "ab"]
    services.definition_pause(
        name=definition.name, version=definition.version, reason="x", actor="user:olga"
    )
    statements = 0

    def die_at_the_sixth(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        nonlocal statements
        statements += 1
        if statements == 6:
            raise WorkerDied
        return execute(sql, params, many, context)

    with connection.execute_wrapper(die_at_the_sixth), pytest.raises(WorkerDied):
        services.definition_resume(
            name=definition.name, version=definition.version, reason="y", actor="user:olga"
        )
    assert all(fresh(saga).paused == PauseScope.DEFINITION for saga in sagas)
    services.definition_resume(
        name=definition.name, version=definition.version, reason="y", actor="user:olga"
    )
    drain()
    assert all(fresh(saga).status == SagaStatus.COMPLETED for saga in sagas)


def test_the_totals_stay_exact_when_a_rolled_up_saga_is_rerun(the_world):
    from django.db.models import Count

    from bpm import totals

    saga = completed()
    clock.advance(3600)
    totals.roll_up()

    def exact() -> dict[str, int]:
        rows = SagaInstance.objects.values_list("status").annotate(n=Count("*"))
        return dict(rows)

    def counted() -> dict[str, int]:
        by_status = totals.counts_by_version()[saga.definition_id]
        return {status: n for status, n in by_status.items() if n}

    services.saga_rerun(saga_id=saga.id, step="c", reason="again", actor="user:olga")
    assert counted() == exact() == {SagaStatus.RUNNING: 1}
    drain()
    clock.advance(3600)
    totals.roll_up()
    assert counted() == exact() == {SagaStatus.COMPLETED: 1}
