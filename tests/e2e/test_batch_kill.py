"""A batch repair survives its worker's SIGKILL: every saga is acted on once, none twice."""

from __future__ import annotations

import pytest
from batch_kit import mailing
from django.db.models import Count

from benchmarks.stuck_sagas import seed_stuck
from bpm import batches
from bpm.models import (
    Batch,
    BatchItem,
    BatchItemStatus,
    BatchStatus,
    EventType,
    SagaEvent,
    SagaInstance,
    SagaStatus,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SAGAS = 800


def test_a_batch_whose_worker_is_killed_mid_batch_finishes_with_every_saga_acted_on_once(
    processes, wait_for
):
    seed_stuck(mailing(), SAGAS, {"email": "a@example.com"})
    worker = processes.worker("worker-1")
    batch = batches.batch_create(
        query={"status": "STUCK"}, action="abort", reason="resolved upstream", actor="user:olga"
    )

    def progress() -> Batch:
        return Batch.objects.get(pk=batch.pk)

    wait_for(lambda: progress().done >= 50, message="the batch to get going")
    processes.kill(worker)
    killed_at = progress().done
    assert killed_at < SAGAS, "the batch finished before the kill: make it bigger"
    # What the dead worker committed is exactly what its items say.
    assert (
        SagaInstance.objects.filter(status=SagaStatus.ABORTED).count()
        == BatchItem.objects.filter(batch=batch, status=BatchItemStatus.DONE).count()
        == killed_at
    )
    processes.worker("worker-2")
    processes.start(
        "sweeper", "sweep", "--forever", "--interval", "0.5", BPM_BATCH_REDRIVE_AFTER="2"
    )
    wait_for(
        lambda: progress().status == BatchStatus.FINISHED, timeout=120, message="the batch to end"
    )
    finished = progress()
    assert (finished.done, finished.refused, finished.failed) == (SAGAS, 0, 0)
    assert SagaInstance.objects.filter(status=SagaStatus.ABORTED).count() == SAGAS
    audits = (
        SagaEvent.objects.filter(type=EventType.OPERATOR_ABORT)
        .values("saga_id")
        .annotate(n=Count("id"))
    )
    assert len(audits) == SAGAS and {row["n"] for row in audits} == {1}
