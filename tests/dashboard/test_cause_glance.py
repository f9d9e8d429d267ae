"""The cause at a glance: the failing step, its last error and attempts on the saga page, in every
stuck list, and the overview's groups of stuck sagas by cause, each a link to exactly its sagas."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from factories import UserFactory
from saga_rows import make_sagas
from testkit import fresh, three_steps, with_pivot, work

from bpm import clock, engine, services
from bpm.dashboard.causes import stuck_groups
from bpm.models import SagaStatus, StepRun, StepStatus, StuckReason

OVERVIEW = reverse("dashboard:overview")
SAGAS = reverse("dashboard:sagas")

pytestmark = pytest.mark.django_db


def stuck(definition, count, *, step, code, message, minutes_ago, reason=None, attempts=3):
    """Stuck sagas of one cause, the last of them the newest."""
    start = clock.now() - timedelta(minutes=minutes_ago)
    return make_sagas(
        definition,
        count,
        status=SagaStatus.STUCK,
        stuck_reason=reason or StuckReason.RETRIES_EXHAUSTED,
        stuck_step=step,
        stuck_error_code=code,
        stuck_error=message,
        stuck_attempts=attempts,
        start=start,
        spacing=timedelta(seconds=10),
    )


@pytest.mark.django_db(transaction=True)
def test_a_fault_that_exhausts_its_retries_leaves_its_step_type_message_and_attempts(
    the_world, drained
):
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.STUCK
    assert (saga.stuck_step, saga.stuck_error_code, saga.stuck_error, saga.stuck_attempts) == (
        "after",
        "ConnectionError",
        "after is unreachable",
        3,
    )
    run = StepRun.objects.get(saga=saga, step__name="after")
    assert run.error_code == "ConnectionError"


@pytest.mark.django_db(transaction=True)
def test_a_refusal_after_the_pivot_leaves_its_code_and_a_retry_clears_the_cause(the_world, drained):
    with_pivot()
    the_world.will("after", "refuse:MAILBOX_GONE")
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    saga = fresh(saga)
    assert (saga.stuck_reason, saga.stuck_step, saga.stuck_error_code, saga.stuck_attempts) == (
        StuckReason.REFUSED_AFTER_PIVOT,
        "after",
        "MAILBOX_GONE",
        1,
    )
    assert saga.stuck_error == "after refused"
    services.saga_retry(saga_id=saga.id, reason="the mailbox is back", actor="user:olga")
    saga = fresh(saga)
    assert saga.status == SagaStatus.RUNNING
    assert (saga.stuck_step, saga.stuck_error_code, saga.stuck_error, saga.stuck_attempts) == (
        "",
        "",
        "",
        0,
    )


@pytest.mark.django_db(transaction=True)
def test_the_saga_page_summary_shows_the_cause(the_world, drained, viewer):
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    response = viewer.get(reverse("dashboard:saga", args=[saga.id]))
    cause = response.context["cause"]
    assert (cause.step, cause.code, cause.message, cause.attempts, cause.max_attempts) == (
        "after",
        "ConnectionError",
        "after is unreachable",
        3,
        3,
    )
    content = response.content.decode()
    summary = content[content.index('class="saga-summary"') : content.index("</dl>")]
    assert "<strong>after</strong>" in summary
    assert "attempt 3 of 3" in summary
    assert '<code class="error-code" data-cause="code">ConnectionError</code>' in summary
    assert "after is unreachable" in summary


@pytest.mark.django_db(transaction=True)
def test_a_step_being_retried_is_the_cause_of_a_running_saga(the_world, viewer):
    definition = three_steps()
    the_world.will("b", "fault")
    saga = services.saga_start(definition=definition.name, input={}, actor="test")
    work()
    saga = fresh(saga)
    run = StepRun.objects.get(saga=saga, step__name="b")
    assert (run.status, run.error_code) == (StepStatus.PENDING, "ConnectionError")
    cause = viewer.get(reverse("dashboard:saga", args=[saga.id])).context["cause"]
    assert (cause.step, cause.code, cause.attempts) == ("b", "ConnectionError", 1)


def test_a_saga_that_never_failed_has_no_cause(viewer):
    saga = make_sagas(three_steps(), 1, status=SagaStatus.COMPLETED)[0]
    response = viewer.get(reverse("dashboard:saga", args=[saga.id]))
    assert response.context["cause"] is None
    assert b"Failing step" not in response.content


def test_the_overview_groups_stuck_sagas_by_cause_with_counts_and_the_newest_example(viewer):
    three = three_steps()
    stuck(three, 3, step="c", code="SMTP_DOWN", message="the mail server is down", minutes_ago=60)
    newest = stuck(
        three, 1, step="c", code="SMTP_DOWN", message="mailbox does not exist", minutes_ago=5
    )[0]
    stuck(three, 2, step="b", code="ConnectionError", message="b is unreachable", minutes_ago=30)
    stuck(
        three,
        1,
        step="b",
        code="",
        message="no progress for 10 minutes",
        minutes_ago=20,
        reason=StuckReason.NO_PROGRESS,
    )
    make_sagas(three, 5, status=SagaStatus.COMPLETED)
    response = viewer.get(OVERVIEW)
    groups = response.context["stuck_groups"]
    assert [(g.step, g.code, g.reason, g.count) for g in groups] == [
        ("c", "SMTP_DOWN", StuckReason.RETRIES_EXHAUSTED, 4),
        ("b", "ConnectionError", StuckReason.RETRIES_EXHAUSTED, 2),
        ("b", "", StuckReason.NO_PROGRESS, 1),
    ]
    assert groups[0].example.id == newest.id
    content = response.content.decode()
    assert "<strong>4 stuck on c</strong>: mailbox does not exist" in content
    assert "<strong>2 stuck on b</strong>: b is unreachable" in content
    assert reverse("dashboard:saga", args=[newest.id]) in content


def test_each_group_links_to_the_list_of_exactly_its_sagas(viewer):
    three, pivot = three_steps(), with_pivot()
    mine = stuck(three, 3, step="c", code="SMTP_DOWN", message="down", minutes_ago=30)
    stuck(three, 2, step="c", code="MAILBOX_FULL", message="full", minutes_ago=30)
    stuck(three, 2, step="b", code="SMTP_DOWN", message="down", minutes_ago=30)
    stuck(pivot, 2, step="c", code="SMTP_DOWN", message="down", minutes_ago=30)
    stuck(
        three,
        1,
        step="c",
        code="SMTP_DOWN",
        message="down",
        minutes_ago=30,
        reason=StuckReason.TIMED_OUT,
    )
    group = next(
        g
        for g in viewer.get(OVERVIEW).context["stuck_groups"]
        if (g.definition.name, g.step, g.code, g.reason)
        == (three.name, "c", "SMTP_DOWN", StuckReason.RETRIES_EXHAUSTED)
    )
    assert group.url.startswith(f"{SAGAS}?status=STUCK&definition={three.name}&version=")
    assert "&step=c&reason=RETRIES_EXHAUSTED&error=SMTP_DOWN" in group.url
    listed = viewer.get(group.url)
    assert listed.context["form"].errors == {}
    assert {saga.id for saga in listed.context["page"].rows} == {saga.id for saga in mine}
    # The list of stuck sagas shows their cause.
    assert listed.context["show_cause"]
    assert b'data-cause="step">c</td>' in listed.content
    assert b'<code class="error-code">SMTP_DOWN</code>' in listed.content


def test_a_group_without_an_error_code_links_to_the_sagas_without_one(viewer):
    three = three_steps()
    silent = stuck(
        three, 2, step="b", code="", message="", minutes_ago=9, reason=StuckReason.TIMED_OUT
    )
    stuck(three, 1, step="b", code="X", message="x", minutes_ago=9, reason=StuckReason.TIMED_OUT)
    group = next(g for g in stuck_groups() if g.code == "")
    assert group.filters["error"] == "-"
    rows = viewer.get(group.url).context["page"].rows
    assert {saga.id for saga in rows} == {saga.id for saga in silent}


def test_grouping_takes_three_queries_however_many_groups(viewer):
    three = three_steps()
    for index in range(12):
        stuck(three, 2, step=f"s{index}", code=f"E{index}", message="m", minutes_ago=index + 1)
    with CaptureQueriesContext(connection) as captured:
        groups = stuck_groups()
    assert len(groups) == 12
    assert len(captured.captured_queries) == 3


def test_the_list_shows_no_cause_columns_when_it_lists_no_stuck_sagas(viewer):
    make_sagas(three_steps(), 2, status=SagaStatus.COMPLETED)
    response = viewer.get(SAGAS)
    assert not response.context["show_cause"]
    assert b"Failing step</th>" not in response.content


def test_the_overview_stuck_list_has_the_cause_columns(viewer):
    stuck(three_steps(), 1, step="c", code="SMTP_DOWN", message="mail is down", minutes_ago=3)
    content = viewer.get(OVERVIEW).content.decode()
    table = content[content.index("Waited longest") :]
    assert '<th scope="col">Failing step</th>' in table
    assert 'data-cause="step">c</td>' in table
    assert "mail is down" in table


def test_the_step_and_error_filters_say_what_they_select(viewer):
    response = viewer.get(SAGAS, {"step": "x" * 101})
    assert "step" in response.context["form"].errors
    assert response.context["page"] is None


def test_the_admin_changelist_of_stuck_sagas_shows_the_cause(admin_client):
    stuck(three_steps(), 1, step="c", code="SMTP_DOWN", message="mail is down", minutes_ago=3)
    url = reverse("admin:bpm_sagainstance_changelist")
    listed = admin_client.get(url, {"status__exact": "STUCK"})
    assert b"SMTP_DOWN: mail is down" in listed.content
    assert b"column-stuck_step" in listed.content
    assert b"column-stuck_step" not in admin_client.get(url).content


@pytest.mark.parametrize("page", [OVERVIEW, f"{SAGAS}?status=STUCK&step=c&error=X"])
def test_strangers_see_no_causes(client, page):
    stuck(three_steps(), 1, step="c", code="X", message="secret detail", minutes_ago=3)
    assert client.get(page).status_code == 302
    client.force_login(UserFactory(username="carl"))
    response = client.get(page)
    assert response.status_code == 403
    assert b"secret detail" not in response.content


def test_the_migration_fills_in_the_cause_of_sagas_stuck_before_it(the_world):
    three = three_steps()
    saga = stuck(three, 1, step="", code="", message="", minutes_ago=3, attempts=0)[0]
    step = three.steps.get(name="b")
    StepRun.objects.create(saga=saga, step=three.steps.get(name="a"), direction="FORWARD")
    StepRun.objects.filter(saga=saga).update(status=StepStatus.SUCCEEDED)
    run = StepRun.objects.create(
        saga=saga,
        step=step,
        direction="FORWARD",
        attempts=3,
        last_error="b is unreachable",
        failure_kind="EXHAUSTED",
    )
    StepRun.objects.filter(pk=run.pk).update(status=StepStatus.FAILED)
    saga.events.create(
        step_run=run, type="STEP_EXHAUSTED", actor="x", data={"type": "ConnectionError"}
    )
    migration = importlib.import_module("bpm.migrations.0016_stuck_cause_and_error_code")
    migration.fill_error_codes(apps, None)
    migration.fill_stuck_causes(apps, None)
    saga = fresh(saga)
    assert (saga.stuck_step, saga.stuck_error_code, saga.stuck_error, saga.stuck_attempts) == (
        "b",
        "ConnectionError",
        "b is unreachable",
        3,
    )


@pytest.mark.django_db(transaction=True)
def test_a_saga_flagged_while_a_step_is_retried_takes_that_step_and_its_error(the_world, settings):
    definition = three_steps()
    the_world.will("b", "fault")
    saga = services.saga_start(definition=definition.name, input={}, actor="test")
    work()  # a succeeds, b faults once and waits for its retry
    engine.flag(
        [saga.id],
        reason=StuckReason.TIMED_OUT,
        message="past its deadline",
        applies=lambda _: True,
        actor="sweeper",
    )
    saga = fresh(saga)
    assert (saga.status, saga.stuck_reason) == (SagaStatus.STUCK, StuckReason.TIMED_OUT)
    assert (saga.stuck_step, saga.stuck_error_code, saga.stuck_error, saga.stuck_attempts) == (
        "b",
        "ConnectionError",
        "b is unreachable",
        1,
    )


@pytest.mark.django_db(transaction=True)
def test_a_saga_flagged_with_nothing_failed_keeps_the_sweepers_message(the_world, redis, settings):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    redis.flushdb()  # the doorbell is lost: a waits, never tried
    engine.flag(
        [saga.id],
        reason=StuckReason.NO_PROGRESS,
        message="no progress for 10 minutes",
        applies=lambda _: True,
        actor="sweeper",
    )
    saga = fresh(saga)
    assert (saga.stuck_step, saga.stuck_error_code, saga.stuck_error, saga.stuck_attempts) == (
        "a",
        "",
        "no progress for 10 minutes",
        0,
    )
