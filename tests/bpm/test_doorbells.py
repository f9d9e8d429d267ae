from __future__ import annotations

import django_rq
import pytest
from django.db import transaction
from testkit import fresh, three_steps, work

from bpm import clock, dispatch, engine, services, sweeper
from bpm.models import EventType, SagaInstance, SagaStatus, StepRun, StepStatus

pytestmark = pytest.mark.django_db(transaction=True)


def queued_jobs() -> int:
    return django_rq.get_queue("default").count


def test_the_same_doorbell_delivered_twice_runs_the_handler_once(the_world, settings):
    settings.BPM_INLINE_MAX_STEPS = 1
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    run = StepRun.objects.get(saga=saga)
    dispatch.ring_now(run.id, str(run.token), run.due_at, 30, "default")  # a duplicate
    work()
    assert the_world.calls.count(("a", "FORWARD", 1)) == 1
    assert StepRun.objects.get(pk=run.pk).attempts == 1


def test_a_doorbell_with_a_stale_token_is_refused(the_world):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    run = StepRun.objects.get(saga=saga)
    assert engine.execute(run.id, "00000000-0000-0000-0000-000000000000") is None
    assert StepRun.objects.get(pk=run.pk).status == StepStatus.PENDING
    assert the_world.calls == []


def test_a_saga_started_in_a_transaction_that_rolls_back_leaves_no_rows_and_no_jobs(the_world):
    definition = three_steps()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        services.saga_start(definition=definition.name, input={}, actor="test")
        raise Rollback
    assert SagaInstance.objects.count() == 0
    assert StepRun.objects.count() == 0
    assert queued_jobs() == 0


def test_a_lost_doorbell_is_rung_again_by_the_sweeper(the_world, drained, redis, settings):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    redis.flushdb()
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.redrive() == 1
    assert sweeper.redrive() == 0  # the new doorbell is live
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert saga.events.filter(type=EventType.REDRIVEN).count() == 1


def test_an_expired_lease_becomes_a_failed_attempt_and_a_late_result_is_dropped(the_world, drained):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    run = StepRun.objects.get(saga=saga)
    # A worker claims the step, then goes silent past its lease.
    with transaction.atomic():
        claimed = engine.claim(run.id, str(run.token), None, actor="worker:ghost")
        assert claimed is not None
        _, locked_run, _, owner = claimed
        locked_run.save()
    clock.advance(60)
    assert sweeper.expire_leases() == 1
    with transaction.atomic():
        _, locked_run = engine._lock_run(run.id, None)
        assert locked_run.status == StepStatus.PENDING and locked_run.lease_owner != owner
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert saga.events.filter(type=EventType.LEASE_EXPIRED).count() == 1


def test_a_saga_past_its_deadline_is_flagged_timed_out(the_world):
    from datetime import timedelta

    saga = services.saga_start(
        definition=three_steps().name,
        input={},
        actor="test",
        deadline=clock.now() + timedelta(seconds=30),
    )
    clock.advance(31)
    assert sweeper.flag_past_deadline() == 1
    saga = fresh(saga)
    assert (saga.status, saga.stuck_reason) == (SagaStatus.STUCK, "TIMED_OUT")
    assert StepRun.objects.get(saga=saga).status == StepStatus.CANCELLED
