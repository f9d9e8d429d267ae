"""One job answers the next doorbells of its queue: other sagas' steps, within the job's budget."""

from __future__ import annotations

import threading

import django_rq
import pytest
from django.conf import settings
from testkit import FAST, declare, fresh, three_steps, work

from bpm import clock, dispatch, engine, services, sweeper, tasks
from bpm.declarations import StepDeclaration as Step
from bpm.models import EventType, SagaInstance, SagaStatus, StepRun, StepStatus

pytestmark = pytest.mark.django_db(transaction=True)


def start(count: int, handler: str = "test.local") -> list[SagaInstance]:
    definition = three_steps(handler=handler)
    return [
        services.saga_start(definition=definition.name, input={}, actor="test")
        for _ in range(count)
    ]


def jobs_run() -> int:
    """How many doorbell jobs RQ ran (each leaves its job in the finished registry)."""
    return django_rq.get_queue("default").finished_job_registry.count


def test_one_job_answers_the_doorbells_waiting_behind_it(the_world):
    sagas = start(5)
    work()
    assert all(fresh(saga).status == SagaStatus.COMPLETED for saga in sagas)
    assert jobs_run() == 1  # 15 steps, one RQ job
    assert len(the_world.calls) == 15
    # The doorbells it answered for the others left no job behind in Redis.
    assert len(django_rq.get_connection("default").keys("rq:job:bpm-step-*")) == 1


def test_a_job_answers_at_most_its_budget_of_steps(the_world, settings):
    settings.BPM_JOB_MAX_STEPS = 6
    sagas = start(4)
    work()
    assert all(fresh(saga).status == SagaStatus.COMPLETED for saga in sagas)
    # 12 steps, at most 6 per job: the budget ends a job, RQ runs the next doorbell.
    assert jobs_run() == 2


def test_no_doorbell_is_taken_without_a_budget(the_world, settings):
    settings.BPM_JOB_MAX_STEPS = 1
    settings.BPM_INLINE_MAX_STEPS = 1
    sagas = start(2)
    work()
    assert all(fresh(saga).status == SagaStatus.COMPLETED for saga in sagas)
    assert jobs_run() == 6  # one step per job, as before inline continuation


def test_a_job_that_is_not_a_doorbell_stays_at_the_head_of_the_queue(the_world):
    queue = django_rq.get_queue("default")
    (saga,) = start(1)
    other = queue.enqueue("bpm.clock.now")
    (behind,) = start(1)
    run = StepRun.objects.get(saga=saga)
    assert dispatch.take_doorbell("default", max_timeout=10_000) == (run.id, str(run.token))
    assert dispatch.take_doorbell("default", max_timeout=10_000) is None
    assert queue.job_ids[0] == other.id  # left where it was, for RQ to run
    assert len(queue.job_ids) == 2
    later = StepRun.objects.get(saga=behind)
    assert queue.job_ids[1] == dispatch.job_id(later.id, str(later.token))


def test_a_doorbell_whose_limit_does_not_fit_what_the_job_has_left_stays(the_world):
    (saga,) = start(1)
    run = StepRun.objects.get(saga=saga)
    job = django_rq.get_queue("default").fetch_job(dispatch.job_id(run.id, str(run.token)))
    assert job is not None
    limit = float(job.timeout or 0)
    assert dispatch.take_doorbell("default", max_timeout=limit - 1) is None
    assert django_rq.get_queue("default").count == 1
    assert dispatch.take_doorbell("default", max_timeout=limit) == (run.id, str(run.token))
    assert django_rq.get_queue("default").count == 0


def test_a_taken_doorbell_is_gone_from_redis(the_world):
    (saga,) = start(1)
    run = StepRun.objects.get(saga=saga)
    jid = dispatch.job_id(run.id, str(run.token))
    assert dispatch.take_doorbell("default", max_timeout=10_000) == (run.id, str(run.token))
    assert django_rq.get_connection("default").exists(f"rq:job:{jid}") == 0
    assert not dispatch.has_live_job(run, "default")


def test_a_taken_doorbell_whose_worker_died_is_rung_again_by_the_sweeper(the_world, drained):
    # A worker took the doorbell, then died before claiming: the run stays PENDING, its doorbell
    # is nowhere, and the sweeper rings it again once it is overdue by the grace period.
    (saga,) = start(1)
    assert dispatch.take_doorbell("default", max_timeout=10_000) is not None
    clock.advance(settings.BPM_REDRIVE_GRACE + 1)
    assert sweeper.redrive() == 1
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert saga.events.filter(type=EventType.REDRIVEN).count() == 1


def test_a_taken_doorbell_with_a_stale_token_is_refused(the_world):
    first, second = start(2)
    # The second saga's run was rung again under a new token (a redrive): its old doorbell,
    # still queued behind the first saga's, is stale.
    StepRun.objects.filter(saga=second).update(token="00000000-0000-0000-0000-000000000001")
    work()
    assert fresh(first).status == SagaStatus.COMPLETED
    run = StepRun.objects.get(saga=second)
    assert run.status == StepStatus.PENDING and run.attempts == 0
    assert len(the_world.calls) == 3


def test_a_continued_step_whose_timeout_outlasts_the_job_is_rung_instead(the_world):
    declare(
        "short_then_long",
        Step("a", "test.local", retry=FAST),
        Step("b", "test.local", retry=FAST, timeout=600),
    )
    saga = services.saga_start(definition="short_then_long", input={}, actor="test")
    work()
    assert fresh(saga).status == SagaStatus.COMPLETED
    # a's job (limit 62 s) may not run b (600 s): b's doorbell is a job of its own.
    assert jobs_run() == 2


def test_a_worker_asked_to_stop_mid_step_rings_the_continued_step_for_another(
    the_world, monkeypatch
):
    (saga,) = start(1)
    monkeypatch.setattr(dispatch, "_stop_requested", threading.Event())
    execute = engine.execute

    def execute_then_stop(*args: object, **kwargs: object) -> engine.Continuation | None:
        following = execute(*args, **kwargs)  # type: ignore[arg-type]
        dispatch.note_stop_requested()  # SIGTERM arrived while the step ran
        return following

    monkeypatch.setattr(engine, "execute", execute_then_stop)
    first = StepRun.objects.get(saga=saga)
    tasks.answer_doorbell(first.id, str(first.token))
    assert the_world.calls == [("a", "FORWARD", 1)]
    following = StepRun.objects.get(saga=saga, step__name="b")
    assert following.status == StepStatus.PENDING
    queued = django_rq.get_queue("default").job_ids
    assert dispatch.job_id(following.id, str(following.token)) in queued
