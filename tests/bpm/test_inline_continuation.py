"""Inline continuation: a job keeps its saga's runs between steps, never a stale copy of them."""

from __future__ import annotations

import pytest
from django.db import transaction
from testkit import declare, fresh

from bpm import clock, engine, services
from bpm.declarations import StepDeclaration as Step
from bpm.models import Barrier, SagaInstance, StepRun
from bpm.states import SagaStatus, StepStatus, StuckReason

pytestmark = pytest.mark.django_db(transaction=True)


def start_two_local_steps() -> SagaInstance:
    declare("two_local", Step("a", "test.local", "test.local"), Step("b", "test.local"))
    return services.saga_start(definition="two_local", input={}, actor="test")


def first_step_inline(saga: SagaInstance) -> engine.Continuation:
    first = StepRun.objects.get(saga=saga)
    continuation = engine.execute(first.id, str(first.token), inline=True)
    assert continuation is not None
    return continuation


def test_a_continued_step_reuses_the_runs_read_by_the_first(the_world):
    saga = start_two_local_steps()
    continuation = first_step_inline(saga)
    assert engine.execute(continuation.run_id, continuation.token, view=continuation.view) is None
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert the_world.calls == [("a", "FORWARD", 1), ("b", "FORWARD", 1)]


def test_a_continuation_is_refused_when_the_sweeper_flagged_the_saga_meanwhile(the_world):
    saga = start_two_local_steps()
    continuation = first_step_inline(saga)
    flagged = engine.flag(
        [saga.id], reason=StuckReason.NO_PROGRESS, message="x", applies=bool, actor="sweeper"
    )
    assert flagged == 1
    assert engine.execute(continuation.run_id, continuation.token, view=continuation.view) is None
    assert fresh(saga).status == SagaStatus.STUCK
    assert StepRun.objects.get(pk=continuation.run_id).status == StepStatus.CANCELLED
    assert the_world.calls == [("a", "FORWARD", 1)]


def test_a_continuation_is_refused_when_its_run_was_rung_again_meanwhile(the_world):
    saga = start_two_local_steps()
    continuation = first_step_inline(saga)
    pending = StepRun.objects.get(pk=continuation.run_id)
    assert engine.redrive([pending], actor="sweeper", message="rang again") == 1
    assert engine.execute(continuation.run_id, continuation.token, view=continuation.view) is None
    pending.refresh_from_db()
    assert pending.status == StepStatus.PENDING  # the new doorbell runs it
    assert the_world.calls == [("a", "FORWARD", 1)]
    # The barrier row sent ahead with the refused claim (PostgreSQL) was rolled back with it,
    # so the new doorbell runs the step instead of skipping it as a duplicate.
    assert not Barrier.objects.filter(saga=saga, step="b").exists()
    assert engine.execute(pending.id, str(pending.token)) is None
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert the_world.calls == [("a", "FORWARD", 1), ("b", "FORWARD", 1)]


def test_a_view_is_kept_while_the_saga_row_is_the_one_the_worker_wrote(the_world):
    saga = start_two_local_steps()
    continuation = first_step_inline(saga)
    with transaction.atomic():
        locked = engine._lock_run(continuation.run_id, continuation.view)
        assert locked is not None and locked[0] is continuation.view


def test_a_view_older_than_the_saga_row_is_read_again(the_world):
    saga = start_two_local_steps()
    continuation = first_step_inline(saga)
    # Another writer saved the saga meanwhile: the view's runs are not trusted, but read again.
    SagaInstance.objects.filter(pk=saga.pk).update(updated_at=clock.now())
    with transaction.atomic():
        locked = engine._lock_run(continuation.run_id, continuation.view)
        assert locked is not None
        assert locked[0] is not continuation.view and locked[0].runs is None
    assert engine.execute(continuation.run_id, continuation.token, view=continuation.view) is None
    assert fresh(saga).status == SagaStatus.COMPLETED
