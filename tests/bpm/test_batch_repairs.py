"""Batch repairs: one action on every saga a filter matches, through the per-saga services."""

from __future__ import annotations

import pytest
from batch_kit import mailing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from factories import UserFactory
from testkit import fresh, work

from benchmarks.stuck_sagas import seed_stuck
from bpm import batches, clock, merge_patch, redis_connection, services, sweeper
from bpm.errors import Conflict, InvalidInput, PermissionDenied
from bpm.models import (
    Batch,
    BatchItem,
    BatchItemStatus,
    BatchStatus,
    EventType,
    SagaInstance,
    SagaStatus,
)

pytestmark = pytest.mark.django_db(transaction=True)
STUCK_MAILINGS = {"status": "STUCK", "definition": "mailing"}


@pytest.fixture
def stuck(the_world):
    """Return the ids of five mailing sagas stuck on `send`, their email a@example.com."""
    return seed_stuck(mailing(), 5, {"email": "a@example.com"})


@pytest.fixture
def operator():
    return UserFactory(username="olga", groups=["operators"])


def test_merge_patch_follows_rfc_7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch.apply(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch.apply({"a": [1]}, {"a": [2]}) == {"a": [2]}
    assert merge_patch.apply({"a": 1}, {"b": {"c": None}}) == {"a": 1, "b": {}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}


def test_a_batch_retries_every_matching_saga_with_the_patch_and_each_event_names_it(
    stuck, operator, drained
):
    batch = batches.batch_create(
        query=STUCK_MAILINGS,
        action="retry",
        patch={"tier": "gold"},
        reason="the mail relay is back",
        user=operator,
    )
    assert (batch.matched, batch.status, batch.filter_query) == (
        5,
        BatchStatus.PENDING,
        "status=STUCK&definition=mailing",
    )
    drained()
    batch.refresh_from_db()
    assert (batch.status, batch.done, batch.refused, batch.failed) == (
        BatchStatus.FINISHED,
        5,
        0,
        0,
    )
    for saga in SagaInstance.objects.filter(pk__in=stuck):
        assert saga.status == SagaStatus.COMPLETED
        assert saga.input == {"email": "a@example.com", "tier": "gold"}
        audit = saga.events.get(type=EventType.OPERATOR_RETRY)
        assert (audit.actor, audit.message, audit.data["batch"]) == (
            "user:olga",
            "the mail relay is back",
            batch.pk,
        )
    assert set(batch.items.values_list("status", flat=True)) == {BatchItemStatus.DONE}


def test_a_saga_the_patch_makes_invalid_or_that_is_not_stuck_is_refused_and_says_why(
    stuck, operator, drained
):
    services.saga_abort(saga_id=stuck[0], reason="by hand", actor="user:olga")
    batch = batches.batch_create(
        query={"definition": "mailing"},
        action="retry",
        patch={"email": None},
        reason="drop the address",
        user=operator,
    )
    drained()
    batch.refresh_from_db()
    assert (batch.done, batch.refused, batch.status) == (0, 5, BatchStatus.FINISHED)
    messages = dict(batch.items.values_list("saga_id", "message"))
    assert "ABORTED, not STUCK" in messages[stuck[0]]
    assert "email" in messages[stuck[1]] and "required" in messages[stuck[1]]
    assert fresh(SagaInstance(pk=stuck[1])).input == {"email": "a@example.com"}


def test_the_preview_counts_each_plan_and_each_refusal_and_changes_nothing(stuck, operator):
    services.saga_abort(saga_id=stuck[0], reason="by hand", actor="user:olga")
    preview = batches.batch_preview(query={"definition": "mailing"}, action="retry", user=operator)
    assert (preview.matched, preview.sampled, preview.is_sample) == (5, 5, False)
    assert preview.plans == [(["run send", "run confirm"], 4)]
    [(why, count, examples)] = preview.refusals
    assert count == 1 and "ABORTED" in why and examples == [str(stuck[0])]
    assert SagaInstance.objects.filter(status=SagaStatus.STUCK).count() == 4
    assert not Batch.objects.exists()


def test_skip_and_abort_act_through_their_services(stuck, operator, drained):
    batches.batch_create(
        query={**STUCK_MAILINGS, "q": "stuck-1"},
        action="skip",
        output={"by": "hand"},
        reason="sent by hand",
        user=operator,
    )
    batches.batch_create(
        query={**STUCK_MAILINGS, "q": "stuck-2"}, action="abort", reason="gone", user=operator
    )
    drained()
    assert fresh(SagaInstance(pk=stuck[1])).context["send"] == {"by": "hand"}
    assert fresh(SagaInstance(pk=stuck[2])).status == SagaStatus.ABORTED


def test_a_cancelled_batch_acts_on_no_more_sagas(stuck, operator):
    batch = batches.batch_create(query=STUCK_MAILINGS, action="abort", reason="x", user=operator)
    batches.batch_cancel(batch_id=batch.pk, user=operator)
    work()
    batch.refresh_from_db()
    assert (batch.status, batch.done, batch.cancelled_by) == (
        BatchStatus.CANCELLED,
        0,
        "user:olga",
    )
    assert SagaInstance.objects.filter(status=SagaStatus.STUCK).count() == 5
    with pytest.raises(Conflict, match="CANCELLED"):
        batches.batch_cancel(batch_id=batch.pk, user=operator)


def test_a_second_doorbell_of_the_same_batch_acts_on_nothing_twice(stuck, operator):
    batch = batches.batch_create(query=STUCK_MAILINGS, action="abort", reason="x", user=operator)
    assert batches.batch_work(batch_id=batch.pk) == 5
    assert batches.batch_work(batch_id=batch.pk) == 0
    # An item another doorbell finished is skipped even if the batch were still running.
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING)
    assert batches.batch_work(batch_id=batch.pk) == 0
    assert SagaInstance.objects.get(pk=stuck[0]).events.filter(type="OPERATOR_ABORT").count() == 1


def test_each_saga_costs_a_bounded_number_of_queries(operator, the_world):
    seed_stuck(mailing(), 30, {"email": "a@example.com"})
    batch = batches.batch_create(query=STUCK_MAILINGS, action="retry", reason="x", user=operator)
    with CaptureQueriesContext(connection) as queries:
        batches.batch_work(batch_id=batch.pk)
    assert Batch.objects.get(pk=batch.pk).done == 30
    assert len(queries) / 30 <= 12, [q["sql"][:80] for q in queries.captured_queries[:40]]


def test_the_sweeper_rings_again_for_a_batch_whose_worker_went_quiet(stuck, operator, redis):
    batch = batches.batch_create(query=STUCK_MAILINGS, action="abort", reason="x", user=operator)
    redis.flushdb()  # the doorbell is lost
    assert sweeper.sweep_once().batches_redriven == 0
    clock.advance(61)
    assert sweeper.sweep_once().batches_redriven == 1
    work()
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.FINISHED


def test_an_invalid_filter_is_refused_with_a_message_per_parameter(stuck, operator):
    with pytest.raises(batches.InvalidFilter) as refused:
        batches.batch_create(
            query={"status": "NOPE", "colour": "red"}, action="abort", reason="x", user=operator
        )
    assert set(refused.value.fields) == {"status", "colour"}
    with pytest.raises(InvalidInput, match="no saga matches"):
        batches.batch_create(query={"status": "RUNNING"}, action="abort", reason="x", user=operator)
    with pytest.raises(InvalidInput, match="reason is required"):
        batches.batch_create(query=STUCK_MAILINGS, action="abort", reason=" ", user=operator)
    with pytest.raises(InvalidInput, match="only a retry takes a patch"):
        batches.batch_create(
            query=STUCK_MAILINGS, action="abort", patch={}, reason="x", user=operator
        )
    assert not BatchItem.objects.exists()


def test_a_viewer_may_neither_preview_nor_start_a_batch(stuck):
    vera = UserFactory(username="vera", groups=["viewers"])
    with pytest.raises(PermissionDenied, match="vera may not retry"):
        batches.batch_create(query=STUCK_MAILINGS, action="retry", reason="x", user=vera)
    with pytest.raises(PermissionDenied):
        batches.batch_preview(query=STUCK_MAILINGS, action="abort", user=vera)


def test_a_batch_out_of_time_rings_again_ahead_of_the_steps_its_retries_rang(stuck, operator):
    batch = batches.batch_create(query=STUCK_MAILINGS, action="retry", reason="x", user=operator)
    queue = redis_connection.queue("default")
    queue.empty()
    assert batches.batch_work(batch_id=batch.pk, seconds=0) == 5  # one group, then out of time
    jobs = queue.job_ids
    assert jobs[0].startswith(f"bpm-batch-{batch.pk}-")
    assert len(jobs) == 6 and all(job.startswith("bpm-step-") for job in jobs[1:])
