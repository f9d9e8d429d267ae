"""The overview: stuck sagas first, recent activity, counts by definition and status, RQ."""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rq import Queue, Worker
from saga_rows import make_sagas
from testkit import fresh, three_steps, with_pivot

from bpm import clock, services
from bpm.models import SagaStatus, StuckReason

URL = reverse("dashboard:overview")

pytestmark = pytest.mark.django_db


def counts_of(response, definition):
    """Return {status: count} of a definition's row in the overview's table ('' for all)."""
    rows = [response.context["totals"], *response.context["rows"]]
    row = next(row for row in rows if (row.key or "") == definition)
    return {status: count for status, count in row.counts if count}


def test_a_viewer_sees_the_overview(viewer):
    response = viewer.get(URL)
    assert response.status_code == 200
    assert b"Stuck sagas" in response.content
    assert b"No saga is stuck." in response.content
    assert b'hx-trigger="every 5s"' in response.content


def test_the_site_root_leads_to_the_overview(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == URL


def test_counts_are_by_definition_and_status(viewer):
    three, pivot = three_steps(), with_pivot()
    make_sagas(three, 3, status=SagaStatus.COMPLETED)
    make_sagas(three, 2, status=SagaStatus.STUCK, stuck_reason=StuckReason.TIMED_OUT)
    make_sagas(pivot, 1, status=SagaStatus.RUNNING)
    make_sagas(pivot, 4, status=SagaStatus.COMPENSATED)
    response = viewer.get(URL)
    assert counts_of(response, three.name) == {"COMPLETED": 3, "STUCK": 2}
    assert counts_of(response, pivot.name) == {"RUNNING": 1, "COMPENSATED": 4}
    assert counts_of(response, "") == {"COMPLETED": 3, "STUCK": 2, "RUNNING": 1, "COMPENSATED": 4}
    assert response.context["stuck_total"] == 2
    link = f'{reverse("dashboard:sagas")}?definition={pivot.name}&amp;status=COMPENSATED">4</a>'
    assert link.encode() in response.content


def test_the_stuck_list_shows_the_longest_waiting_first_with_reason_and_age(viewer):
    definition = three_steps()
    now = clock.now()
    recent = make_sagas(
        definition,
        1,
        status=SagaStatus.STUCK,
        stuck_reason=StuckReason.TIMED_OUT,
        start=now - timedelta(minutes=5),
    )[0]
    oldest = make_sagas(
        definition,
        1,
        status=SagaStatus.STUCK,
        stuck_reason=StuckReason.COMPENSATION_FAILED,
        start=now - timedelta(days=2),
        business_key="order-7",
    )[0]
    middle = make_sagas(
        definition,
        1,
        status=SagaStatus.STUCK,
        stuck_reason=StuckReason.RETRIES_EXHAUSTED,
        start=now - timedelta(hours=3),
    )[0]
    make_sagas(definition, 5, status=SagaStatus.RUNNING, start=now - timedelta(days=3))
    response = viewer.get(URL)
    assert [saga.id for saga in response.context["stuck"]] == [oldest.id, middle.id, recent.id]
    # The stuck table, after the groups by cause (which link their newest examples).
    content = response.content.decode()
    content = content[content.index("Waited longest") :]
    assert (
        content.index(str(oldest.id))
        < content.index(str(middle.id))
        < content.index(str(recent.id))
    )
    assert reverse("dashboard:saga", args=[oldest.id]) in content
    assert "compensation failed" in content and "order-7" in content
    assert "2\xa0days" in content  # the oldest has been stuck for two days


@pytest.mark.django_db(transaction=True)
def test_a_saga_the_engine_got_stuck_is_listed(the_world, drained, viewer):
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.STUCK
    response = viewer.get(URL)
    assert [stuck.id for stuck in response.context["stuck"]] == [saga.id]
    assert b"retries exhausted" in response.content


def test_recent_activity_counts_the_last_hour_and_the_last_day(viewer):
    definition = three_steps()
    now = clock.now()
    hours_ago = now - timedelta(hours=5)
    days_ago = now - timedelta(days=3)
    make_sagas(definition, 2, start=now - timedelta(minutes=10))  # started, still running
    make_sagas(definition, 3, start=hours_ago, status=SagaStatus.RUNNING)
    make_sagas(
        definition,
        1,
        start=days_ago,
        status=SagaStatus.COMPLETED,
        updated_at=now - timedelta(minutes=1),
        finished_at=now - timedelta(minutes=1),
    )
    make_sagas(definition, 2, start=hours_ago, status=SagaStatus.COMPENSATED, finished_at=hours_ago)
    make_sagas(
        definition,
        1,
        start=days_ago,
        status=SagaStatus.STUCK,
        stuck_reason="NO_PROGRESS",
        updated_at=now - timedelta(minutes=30),
    )
    make_sagas(definition, 4, start=days_ago, status=SagaStatus.COMPLETED, finished_at=days_ago)
    hour, day = viewer.get(URL).context["activity"]
    assert (hour.label, hour.started, hour.completed, hour.compensated, hour.stuck) == (
        "last hour",
        2,
        1,
        0,
        1,
    )
    assert (day.label, day.started, day.completed, day.compensated, day.stuck) == (
        "last day",
        7,
        1,
        2,
        1,
    )


def test_the_overview_costs_the_same_queries_for_3_or_60_sagas(viewer, django_assert_num_queries):
    three, pivot = three_steps(), with_pivot()
    make_sagas(three, 2, status=SagaStatus.STUCK, stuck_reason=StuckReason.TIMED_OUT)
    make_sagas(pivot, 1)
    with CaptureQueriesContext(connection) as few:
        assert viewer.get(URL).status_code == 200
    make_sagas(three, 30, status=SagaStatus.STUCK, stuck_reason=StuckReason.TIMED_OUT)
    make_sagas(pivot, 27, status=SagaStatus.COMPLETED)
    with django_assert_num_queries(len(few)):
        response = viewer.get(URL)
    assert response.context["stuck_total"] == 32


def test_htmx_polling_gets_only_the_live_region(viewer):
    response = viewer.get(URL, headers={"HX-Request": "true"})
    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="overview-live"')
    assert "dashboard-tabs" not in content
    assert "HX-Request" in response["Vary"]


def test_a_registered_worker_is_shown_with_its_state_and_heartbeat(viewer):
    redis = django_rq.get_connection()
    worker = Worker(["default"], connection=redis, name="worker-on-test")
    worker.register_birth()
    try:
        response = viewer.get(URL)
    finally:
        worker.register_death()
    (row,) = response.context["rq"].workers
    assert (row.name, row.queues, row.current_job) == ("worker-on-test", ["default"], None)
    assert row.last_heartbeat is not None
    assert b'data-worker="worker-on-test"' in response.content
    assert b"No worker is running" not in response.content


def test_queues_are_listed_with_their_job_counts(viewer):
    # A plain rq Queue: django_rq's would wait for a commit this test never makes.
    queue = Queue("default", connection=django_rq.get_connection())
    queue.enqueue("bpm.tasks.no_such_task")
    queue.enqueue("bpm.tasks.no_such_task")
    (row,) = viewer.get(URL).context["rq"].queues
    assert (row.name, row.queued, row.started, row.failed) == ("default", 2, 0, 0)


def test_no_worker_says_so_clearly(viewer):
    response = viewer.get(URL)
    assert response.context["rq"].workers == []
    assert b"No worker is running" in response.content


def test_unreachable_redis_is_shown_instead_of_an_error(viewer, settings, tmp_path):
    settings.RQ_QUEUES = {"default": {"URL": f"unix://{tmp_path}/no-redis.sock"}}
    three_steps()
    response = viewer.get(URL)
    assert response.status_code == 200
    assert response.context["rq"].error.startswith("Redis is unreachable")
    assert b"Redis is unreachable" in response.content
    assert b"Stuck sagas" in response.content
