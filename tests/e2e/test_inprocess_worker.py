"""bpm's worker runs the engine's jobs in its own process (no work horse) and forks for others.

Real `rqworker` processes with the handlers of tests/e2e/inprocess_handlers.py, which report the
pid each step ran in and its database backend.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import django_rq
import inprocess_handlers  # noqa: F401  (registers the handlers in this process too)
import pytest
from django.conf import settings
from django.db import connection
from rq.job import JobStatus
from testkit import FAST, declare

from bpm import dispatch, services
from bpm.declarations import StepDeclaration as Step
from bpm.deployment import stop_timeout
from bpm.models import SagaEvent, SagaInstance, StepRun
from bpm.states import EventType, SagaStatus, StepStatus

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
FINISHED = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.STUCK, SagaStatus.ABORTED)
STEPS = "abcd"


def four_steps(handler: str = "e2e.where", timeout: float = 30.0) -> None:
    declare(
        "e2e_where",
        *(Step(name, handler, handler, timeout=timeout, retry=FAST) for name in STEPS),
    )


def start_worker(processes, name: str, **env: str):
    return processes.run(name, [sys.executable, "tests/e2e/inprocess_handlers.py", name], **env)


def start(naps: dict[str, float] | None = None, definition: str = "e2e_where") -> SagaInstance:
    return services.saga_start(definition=definition, input={"naps": naps or {}}, actor="test")


def finish(saga: SagaInstance, wait_for, timeout: float = 60) -> dict[str, Any]:
    """Wait for the saga to finish; return its context (each step's output by name)."""
    wait_for(lambda: status_of(saga) in FINISHED, timeout=timeout, message="the saga to finish")
    saga.refresh_from_db()
    assert saga.status == SagaStatus.COMPLETED
    return dict(saga.context)


def status_of(saga: SagaInstance) -> str:
    return SagaInstance.objects.values_list("status", flat=True).get(pk=saga.pk)


def running(saga: SagaInstance, step: str):
    return StepRun.objects.filter(saga=saga, step__name=step, status=StepStatus.RUNNING)


def test_engine_jobs_run_in_the_worker_and_any_other_job_in_a_work_horse(processes, wait_for):
    four_steps()
    worker = start_worker(processes, "inproc-1")
    first, second = finish(start(), wait_for), finish(start(), wait_for)
    assert {first[step]["pid"] for step in STEPS} == {worker.pid}
    assert {second[step]["pid"] for step in STEPS} == {worker.pid}

    job = django_rq.get_queue(settings.BPM_QUEUES[0]).enqueue(os.getpid)
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, message="os.getpid")
    assert job.return_value() != worker.pid, "a job that is not the engine's runs in a horse"

    third = finish(start(), wait_for)
    assert {third[step]["pid"] for step in STEPS} == {worker.pid}
    assert worker.poll() is None


def test_the_worker_keeps_one_connection_and_replaces_a_terminated_one(processes, wait_for):
    if connection.vendor != "postgresql":
        pytest.skip("backend pids and pg_terminate_backend are PostgreSQL's")
    four_steps()
    # The default for the web (close after each request); the worker keeps its connection.
    worker = start_worker(processes, "inproc-1", DATABASE_CONN_MAX_AGE="0")
    first, second = finish(start(), wait_for), finish(start(), wait_for)
    backends = {saga[step]["backend"] for saga in (first, second) for step in STEPS}
    assert len(backends) == 1, "two sagas, one after the other, on one connection"
    (backend,) = backends

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
        assert cursor.fetchone() == (True,)
    third = finish(start(), wait_for)
    assert {third[step]["pid"] for step in STEPS} == {worker.pid}
    (fresh,) = {third[step]["backend"] for step in STEPS}
    assert fresh != backend
    assert not SagaEvent.objects.filter(type=EventType.REDRIVEN).exists()


@pytest.mark.slow
def test_a_worker_on_a_long_step_keeps_heart_beating_and_nothing_is_redriven(
    processes, wait_for, settings
):
    grace = 2
    settings.BPM_REDRIVE_GRACE = grace
    four_steps("e2e.where_at_least_once")  # its claim commits: RUNNING while the handler runs
    name = "inproc-1"
    start_worker(processes, name, BPM_REDRIVE_GRACE=str(grace))
    processes.sweeper()  # it would redrive a doorbell it found dead
    saga = start(naps={"a": 3 * grace})
    wait_for(running(saga, "a").exists, message="step a to start")
    run = running(saga, "a").select_related("step").get()
    queue = django_rq.get_queue(run.step.queue)
    samples: list[tuple[bool, bool]] = []
    while running(saga, "a").exists():
        alive = name in dispatch._alive_workers(queue.connection, {name})
        live = run.id in dispatch.live_doorbells([(run, run.step.queue)])
        samples.append((alive, live))
        time.sleep(0.2)
    finish(saga, wait_for)
    assert len(samples) > 5 * grace, "sampled for longer than the grace period"
    assert all(alive for alive, _ in samples), "the worker's heartbeat stayed fresh"
    assert all(live for _, live in samples), "the step's doorbell stayed live to the sweeper"
    assert not saga.events.filter(type__in=[EventType.REDRIVEN, EventType.LEASE_EXPIRED]).exists()
    assert StepRun.objects.get(saga=saga, step__name="a").attempts == 1


@pytest.mark.slow
def test_sigterm_lets_the_step_finish_and_rings_the_rest_for_another_worker(processes, wait_for):
    four_steps("e2e.where_at_least_once")
    leaving = start_worker(processes, "leaving")
    saga = start(naps={"a": 3})
    wait_for(running(saga, "a").exists, message="step a to start")
    leaving.send_signal(signal.SIGTERM)  # to the worker alone, as a supervisor stops it
    signalled = time.monotonic()
    staying = start_worker(processes, "staying")
    assert leaving.wait(timeout=stop_timeout()) == 0
    print(f"the worker exited {time.monotonic() - signalled:.1f}s after SIGTERM")
    context = finish(saga, wait_for)
    assert context["a"]["pid"] == leaving.pid, "the step in hand finished where it ran"
    assert StepRun.objects.get(saga=saga, step__name="a").attempts == 1
    # Step b was handed to the job (inline) before the signal came; what follows it is rung
    # for another worker instead of continued inline.
    assert context["c"]["pid"] == context["d"]["pid"] == staying.pid


@pytest.mark.slow
def test_a_second_sigterm_aborts_the_step_and_the_sweeper_recovers_it(processes, wait_for):
    four_steps(timeout=5)  # transactional: claim, handler and result commit together
    leaving = start_worker(processes, "leaving")
    saga = start(naps={"a": 30})
    started = django_rq.get_queue(settings.BPM_QUEUES[0]).started_job_registry
    wait_for(lambda: started.get_job_ids() != [], message="the worker to start step a")
    leaving.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # RQ ignores a second signal within a second of the first
    leaving.send_signal(signal.SIGTERM)  # cold shutdown
    leaving.wait(timeout=15)
    staying = start_worker(processes, "staying", E2E_NO_NAPS="1")
    processes.sweeper()
    context = finish(saga, wait_for, timeout=90)
    # The aborted attempt's transaction rolled back: step a committed once, on the other worker.
    assert {context[step]["pid"] for step in STEPS} == {staying.pid}
    assert saga.events.filter(type=EventType.REDRIVEN).exists()


@pytest.mark.slow
def test_rq_job_timeout_stops_an_in_process_job_hanging_in_python(
    processes, wait_for, settings, monkeypatch
):
    # The first doorbell's RQ timeout: 1 s of step timeout + 0 s inline + 2 s margin.
    monkeypatch.setattr(dispatch, "JOB_TIMEOUT_MARGIN", 2)
    settings.BPM_INLINE_MAX_SECONDS = 0
    declare(
        "e2e_hang",
        Step("a", "e2e.hang", "e2e.hang", timeout=1, retry=FAST),
        Step("b", "e2e.where", "e2e.where", retry=FAST),
    )
    worker = start_worker(processes, "inproc-1")
    saga = start(definition="e2e_hang")
    context = finish(saga, wait_for)
    assert context["a"]["pid"] == context["b"]["pid"] == worker.pid
    assert worker.poll() is None, "the worker went on to the next job"
    events = SagaEvent.objects.filter(saga=saga, attempt=1, step_run__step__name="a")
    assert any("JobTimeoutException" in f"{event.message} {event.data}" for event in events)
