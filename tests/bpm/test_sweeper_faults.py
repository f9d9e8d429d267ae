"""The sweeper and the engine against real faults: dead workers, vanished handlers, late flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import django_rq
import pytest
from rq.queue import Queue
from rq.utils import utcformat
from rq.worker import Worker as RQWorker
from testkit import FAST, declare, fresh, three_steps, world

from bpm import clock, dispatch, registry, services, sweeper
from bpm.context import StepContext
from bpm.declarations import StepDeclaration as Step
from bpm.models import EventType, SagaStatus, StepRun, StepStatus, StuckReason

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE = 30
flags_raised: list[int] = []


@registry.handler("test.vanishing")
def vanishing(ctx: StepContext) -> dict[str, Any]:
    return world.answer(ctx)


@registry.handler("test.deadline_passes_meanwhile")
def deadline_passes_meanwhile(ctx: StepContext) -> dict[str, Any]:
    """Let the saga's deadline pass and the sweeper flag it while this step is still running."""
    clock.advance(DEADLINE + 1)
    flags_raised.append(sweeper.flag_past_deadline())
    return world.answer(ctx)


def start(definition: Any, **kwargs: Any) -> Any:
    return services.saga_start(definition=definition.name, input={}, actor="test", **kwargs)


def doorbell_of(run: StepRun) -> tuple[Queue, Any]:
    queue = django_rq.get_queue("default")
    return queue, queue.fetch_job(dispatch.job_id(run.id, str(run.token)))


def dequeue(queue: Queue) -> Any:
    """Pop the next doorbell as a worker does (RQ 3 moves it to the intermediate list first)."""
    job, _ = Queue.dequeue_any([queue], None, connection=queue.connection)
    return job


def start_as(worker_name: str, queue: Queue) -> RQWorker:
    """Dequeue the next doorbell and mark it STARTED by a registered worker, as RQ does."""
    worker = RQWorker([queue], name=worker_name, connection=queue.connection)
    worker.register_birth()
    job = dequeue(queue)
    worker.prepare_execution(job)
    worker.prepare_job_execution(job, remove_from_intermediate_queue=True)
    worker.heartbeat()
    return worker


# --- 1. a dead worker holding a doorbell ------------------------------------------------------


def test_a_doorbell_left_in_the_intermediate_list_by_a_dead_worker_is_rung_again(
    the_world, drained, settings
):
    saga = start(three_steps())
    run = StepRun.objects.get(saga=saga)
    queue, _ = doorbell_of(run)
    dequeue(queue)  # the worker popped it, then died before starting it
    assert queue.connection.llen(queue.intermediate_queue_key) == 1
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.redrive() == 1
    assert sweeper.redrive() == 0  # the new doorbell waits in the queue
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert saga.events.filter(type=EventType.REDRIVEN).count() == 1
    assert the_world.calls.count(("a", "FORWARD", 1)) == 1


def test_a_doorbell_started_by_a_worker_that_stopped_heartbeating_is_rung_again(
    the_world, drained, settings
):
    saga = start(three_steps())
    run = StepRun.objects.get(saga=saga)
    queue, job = doorbell_of(run)
    ghost = start_as("ghost", queue)
    assert job.get_status() == "started"
    # SIGKILLed: its registration and its started-registry entry outlive it, its heartbeat stops.
    stale = datetime.now(UTC) - timedelta(seconds=settings.BPM_REDRIVE_GRACE + 5)
    queue.connection.hset(ghost.key, "last_heartbeat", utcformat(stale))
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.redrive() == 1
    redriven = StepRun.objects.get(pk=run.pk)
    assert redriven.token != run.token  # the dead worker's doorbell can no longer claim it
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert the_world.calls.count(("a", "FORWARD", 1)) == 1


def test_a_doorbell_started_by_a_live_worker_is_left_alone(the_world, settings):
    saga = start(three_steps())
    run = StepRun.objects.get(saga=saga)
    queue, _ = doorbell_of(run)
    start_as("busy", queue)  # heartbeats: it is running the step's long transaction
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.redrive() == 0
    assert StepRun.objects.get(pk=run.pk).token == run.token


def test_a_doorbell_started_by_an_unregistered_worker_is_rung_again(the_world, settings):
    saga = start(three_steps())
    run = StepRun.objects.get(saga=saga)
    queue, _ = doorbell_of(run)
    worker = start_as("gone", queue)
    worker.register_death()  # RQ's maintenance already dropped it from the worker registry
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.redrive() == 1


def test_a_lost_doorbell_behind_more_live_ones_than_a_batch_is_rung_within_bounded_sweeps(
    the_world, monkeypatch, settings
):
    # A batch of 4 and 2 batches a sweep: 13 due runs are all looked at within 2 sweeps.
    monkeypatch.setattr(sweeper, "BATCH", 4)
    monkeypatch.setattr(sweeper, "REDRIVE_PAGES", 2)
    monkeypatch.setattr(sweeper, "_redrive_cursor", None)
    sagas = [start(three_steps()) for _ in range(13)]
    runs = [StepRun.objects.get(saga=saga) for saga in sagas]

    def lose(run: StepRun) -> None:
        queue, job = doorbell_of(run)
        queue.remove(job)

    lose(runs[-1])  # behind 12 live doorbells, three batches of them
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.redrive() == 0  # the first 8 due runs, all live
    lose(runs[2])  # before where this sweep stopped
    assert sweeper.redrive() == 1  # carries on from the 9th: the last one
    assert sweeper.redrive() == 1  # starts again from the first: the third one
    assert sweeper.redrive() == 0
    redriven = {run.pk for run in runs if StepRun.objects.get(pk=run.pk).token != run.token}
    assert redriven == {runs[2].pk, runs[-1].pk}


def test_the_old_doorbell_of_a_redriven_run_is_refused(the_world, drained, redis, settings):
    saga = start(three_steps())
    run = StepRun.objects.get(saga=saga)
    queue, _ = doorbell_of(run)
    dequeue(queue)
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.redrive() == 1
    # The first doorbell turns up after all (its worker was only slow): the claim refuses it.
    dispatch.ring_now(run.id, str(run.token), run.due_at, 30, "default")
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert StepRun.objects.get(pk=run.pk).attempts == 1


# --- 6. a handler that is no longer registered -----------------------------------------------


def test_a_step_whose_handler_is_gone_sticks_the_saga_at_the_first_attempt(the_world, drained):
    definition = declare(
        "vanishing_handler",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("b", "test.vanishing", "test.remote", retry=FAST),
    )
    gone = registry._handlers.pop("test.vanishing")  # renamed in a newer release
    try:
        saga = start(definition)
        drained()
        saga = fresh(saga)
        assert (saga.status, saga.stuck_reason) == (SagaStatus.STUCK, StuckReason.HANDLER_MISSING)
        stuck = saga.events.get(type=EventType.SAGA_STUCK)
        assert "'test.vanishing' is not registered" in stuck.message
        run = StepRun.objects.get(saga=saga, step__name="b")
        assert (run.status, run.attempts) == (StepStatus.CANCELLED, 0)
    finally:
        registry._handlers["test.vanishing"] = gone
    services.saga_retry(saga_id=saga.id, reason="the handler is back", actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert the_world.effects == [("a", "FORWARD"), ("b", "FORWARD")]


def test_redrives_do_not_count_as_progress(the_world, redis, settings):
    saga = start(three_steps())
    for _ in range(3):
        redis.flushdb()  # every doorbell is lost: no worker ever claims the step
        clock.advance(settings.BPM_STALL_AFTER / 2 + 1)
        sweeper.sweep_once()
    saga = fresh(saga)
    assert saga.events.filter(type=EventType.REDRIVEN).count() >= 1
    assert (saga.status, saga.stuck_reason) == (SagaStatus.STUCK, StuckReason.NO_PROGRESS)


# --- 7. a deadline flag racing the last step ---------------------------------------------------


def deadline_race() -> Any:
    return declare(
        "deadline_race",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("last", "test.deadline_passes_meanwhile", "test.remote", retry=FAST),
    )


def test_a_saga_flagged_timed_out_while_its_last_step_commits_completes(the_world, drained):
    flags_raised.clear()
    deadline = clock.now() + timedelta(seconds=DEADLINE)
    saga = start(deadline_race(), deadline=deadline)
    drained()
    assert flags_raised == [1]  # the flag landed first, while the last step ran
    saga = fresh(saga)
    assert (saga.status, saga.stuck_reason) == (SagaStatus.COMPLETED, "")
    types = list(saga.events.values_list("type", flat=True))
    assert types.index(EventType.SAGA_STUCK) < types.index(EventType.SAGA_COMPLETED)
    assert StepRun.objects.filter(saga=saga, status=StepStatus.SUCCEEDED).count() == 2


def test_a_deadline_flag_that_arrives_after_the_last_step_committed_changes_nothing(
    the_world, drained
):
    saga = start(three_steps(), deadline=clock.now() + timedelta(seconds=DEADLINE))
    clock.advance(DEADLINE + 1)
    overdue = sweeper.overdue_sagas()  # the sweeper reads its list...
    assert overdue == [saga.id]
    drained()  # ...the last step commits...
    assert not sweeper.flag_timed_out(saga.id)  # ...then the flag comes
    assert fresh(saga).status == SagaStatus.COMPLETED


def test_a_running_saga_whose_steps_are_all_done_is_completed_not_flagged(the_world, drained):
    saga = start(three_steps(), deadline=clock.now() + timedelta(seconds=DEADLINE))
    drained()
    # As if the last record had not yet moved the saga on: its runs are all done.
    type(saga).objects.filter(pk=saga.pk).update(status=SagaStatus.RUNNING, finished_at=None)
    clock.advance(DEADLINE + 1)
    assert sweeper.flag_past_deadline() == 0
    assert fresh(saga).status == SagaStatus.COMPLETED
