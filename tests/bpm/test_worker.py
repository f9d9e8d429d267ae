"""bpm's RQ worker: due delayed doorbells are promoted by whichever worker gets there first."""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
from rq.utils import now

from bpm import worker

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
