"""Real workers that die at the worst moment: holding a doorbell, holding RQ's scheduler lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import django_rq
import pytest
from django.db import connection
from faultkit import fail_first_attempt, wait_for_release  # noqa: F401 - registers the handlers
from rq.worker import Worker as RQWorker
from testkit import declare

from bpm import services, sweeper
from bpm.declarations import RetryPolicy
from bpm.declarations import StepDeclaration as Step
from bpm.models import EventType, SagaInstance, SagaStatus, StepRun, StepStatus

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
E2E_DIR = Path(__file__).resolve().parent
ROOT = E2E_DIR.parents[1]


def has_children(pid: int) -> bool:
    """Say whether the process has a child (read from /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                return True
        except (OSError, IndexError, ValueError):
            continue
    return False


def faulty_worker(processes: Any, name: str) -> subprocess.Popen[bytes]:
    """Start `manage.py rqworker --with-scheduler` with the fault handlers registered."""
    log = (processes.log_dir / f"{name}.log").open("ab")
    env = processes.env()
    env["PYTHONPATH"] = os.pathsep.join([str(E2E_DIR), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faultkit",
            "rqworker",
            "--with-scheduler",
            "--name",
            name,
            "default",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    processes.started.append(process)
    return process


def registered_workers() -> int:
    return RQWorker.count(connection=django_rq.get_connection("default"))


def status_of(saga: Any) -> str:
    return SagaInstance.objects.values_list("status", flat=True).get(pk=saga.pk)


def test_a_step_whose_worker_died_holding_its_doorbell_is_rung_again_and_completes(
    processes, wait_for, tmp_path, settings
):
    definition = declare(
        "faults_blocking",
        Step("hold", "faults.wait_for_release", retry=RetryPolicy(max_attempts=3), timeout=60),
    )
    entered, release = tmp_path / "entered", tmp_path / "release"
    doomed = faulty_worker(processes, "doomed")
    saga = services.saga_start(
        definition=definition.name,
        input={"entered": str(entered), "release": str(release)},
        actor="test",
    )
    wait_for(entered.exists, message="the step to start in the doomed worker")
    processes.kill(doomed)  # SIGKILL to the worker and its horse, inside the step's transaction
    run = StepRun.objects.get(saga=saga)
    assert (run.status, run.attempts) == (StepStatus.PENDING, 0)  # nothing committed

    release.write_text("go")
    settings.BPM_REDRIVE_GRACE = 1
    # The dead worker is still registered and its job still STARTED: only its heartbeat stopped.
    wait_for(lambda: sweeper.redrive() == 1, timeout=30, message="the sweeper to ring again")
    faulty_worker(processes, "survivor")
    wait_for(lambda: status_of(saga) == SagaStatus.COMPLETED, timeout=60, message="completion")
    run = StepRun.objects.get(saga=saga)
    assert (run.attempts, run.output) == (1, {"released_on_attempt": 1})
    assert saga.events.filter(type=EventType.REDRIVEN).count() == 1


def test_a_delayed_retry_runs_after_the_worker_holding_the_scheduler_lock_dies(processes, wait_for):
    definition = declare(
        "faults_retry_once",
        Step(
            "flaky",
            "faults.fail_first_attempt",
            retry=RetryPolicy(max_attempts=3, initial_backoff=5, jitter=0),
        ),
    )
    workers = [faulty_worker(processes, "worker-1"), faulty_worker(processes, "worker-2")]
    wait_for(lambda: registered_workers() == 2, message="both workers to register")
    saga = services.saga_start(definition=definition.name, input={}, actor="test")
    retrying = StepRun.objects.filter(saga=saga, status=StepStatus.PENDING, attempts=1)
    wait_for(retrying.exists, message="the first attempt to fail")

    # RQ's scheduler runs in a child process of the worker that holds its lock.
    holders = [worker for worker in workers if has_children(worker.pid)]
    processes.kill(holders[0] if holders else workers[0])
    # No sweeper runs: only a surviving worker can bring the retry in.
    wait_for(
        lambda: status_of(saga) == SagaStatus.COMPLETED,
        timeout=60,
        message="the delayed retry to run",
    )
    run = StepRun.objects.get(saga=saga)
    assert (run.attempts, run.output) == (2, {"succeeded_on_attempt": 2})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates PostgreSQL backends")
def test_a_worker_whose_database_connections_were_terminated_carries_on(processes, wait_for):
    definition = declare(
        "faults_after_outage",
        Step("flaky", "faults.fail_first_attempt", retry=RetryPolicy(initial_backoff=1)),
    )
    faulty_worker(processes, "worker-1")
    first = services.saga_start(definition=definition.name, input={}, actor="test")
    wait_for(lambda: status_of(first) == SagaStatus.COMPLETED, message="the first saga")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    second = services.saga_start(definition=definition.name, input={}, actor="test")
    wait_for(lambda: status_of(second) == SagaStatus.COMPLETED, message="the second saga")
    assert StepRun.objects.get(saga=second).attempts == 2
