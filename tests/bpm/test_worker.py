"""bpm's RQ worker: due delayed doorbells are promoted by whichever worker gets there first; the
engine's jobs are told from any other (tests/e2e/test_inprocess_worker.py runs them)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
from rq.utils import now

from bpm import alert_delivery, dispatch, worker

pytestmark = pytest.mark.django_db(transaction=True)

JOB = "bpm.tasks.answer_doorbell"


def test_due_delayed_jobs_are_promoted_once_however_many_workers_try():
    queue = django_rq.get_queue("default")
    for n in range(3):
        queue.enqueue_at(now() - timedelta(seconds=1), JOB, n, "token", job_id=f"j{n}")
    queue.enqueue_at(now() + timedelta(hours=1), JOB, 9, "token", job_id="later")
    assert worker.promote_due_jobs(queue) == 3
    assert worker.promote_due_jobs(queue) == 0  # a second worker finds nothing left to move
    assert sorted(queue.job_ids) == ["j0", "j1", "j2"]
    assert queue.fetch_job("j0").get_status() == "queued"
    assert queue.scheduled_job_registry.get_job_ids() == ["later"]


def test_the_worker_class_is_what_rqworker_runs(settings):
    assert django_rq.workers.get_worker_class() is worker.Worker
    assert django_rq.get_worker("default").job_monitoring_interval == (
        settings.BPM_WORKER_POLL_INTERVAL
    )


def test_the_engine_jobs_are_the_doorbells_alerts_and_batches_and_nothing_else():
    queue = django_rq.get_queue("default")
    engine_jobs = [
        queue.create_job(dispatch.JOB_FUNCTION, args=(1, "token")),
        queue.create_job("bpm.tasks.ring", args=(1, "token")),
        queue.create_job(alert_delivery.JOB_FUNCTION, args=(1, "token")),
        queue.create_job(dispatch.BATCH_JOB_FUNCTION, args=(1,)),
    ]
    assert all(dispatch.is_engine_job(job) for job in engine_jobs)
    assert not dispatch.is_engine_job(queue.create_job("bpm.clock.now"))
    assert all(callable(job.func) for job in engine_jobs)  # each names a real function


def test_rq_commands_to_kill_a_horse_leave_a_worker_running_an_engine_job_alone():
    """RQ's Worker.kill_horse with no horse signals the group of pid 0: the worker's own."""
    script = (
        "import django, os, signal; django.setup(); import django_rq; "
        "django_rq.get_worker('default').kill_horse(); print('still here')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bpm.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # were it to kill its group, only itself
    )
    assert done.returncode == 0, done.stderr
    assert "still here" in done.stdout
