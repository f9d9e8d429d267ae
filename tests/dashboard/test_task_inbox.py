"""The task inbox: who sees which tasks, the form drawn from the schema, and its errors."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from factories import UserFactory
from testkit import fresh, work
from waitkit import task_saga

from bpm import answers, services
from bpm.models import EventType, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)
INBOX = "/admin/dashboard/tasks/"


@pytest.fixture
def task(the_world):
    task_saga()
    saga = services.saga_start(definition="reviewed", input={"n": 1}, actor="test")
    work()
    return answers.open_tasks().get(saga=saga)


@pytest.fixture
def rita(client):
    Group.objects.get_or_create(name="reviewers")
    user = UserFactory(username="rita", groups=["reviewers", "viewers"])
    client.force_login(user)
    return client


def page_of(task):
    return f"{INBOX}{task.pk}/"


def test_a_member_sees_the_task_in_the_inbox_and_its_count_on_the_overview(task, rita):
    inbox = rita.get(INBOX)
    assert inbox.status_code == 200
    assert f'data-task="{task.pk}"' in inbox.content.decode()
    overview = rita.get("/admin/dashboard/").content.decode()
    assert '<span class="overview-tasks-open">1</span>' in overview
    assert '<span class="overview-tasks-unclaimed">1</span>' in overview


def test_a_viewer_outside_the_group_sees_no_task_and_gets_403_on_one(task, client):
    client.force_login(UserFactory(username="vera", groups=["viewers"]))
    assert f'data-task="{task.pk}"' not in client.get(INBOX).content.decode()
    assert client.get(page_of(task)).status_code == 403
    assert client.post(page_of(task), {"action": "claim"}).status_code == 403
    assert fresh(task.saga).status == SagaStatus.RUNNING


def test_anonymous_visitors_are_sent_to_the_login(task, client):
    response = client.get(INBOX)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_form_is_drawn_from_the_schema(task, rita):
    html = rita.get(page_of(task)).content.decode()
    assert 'name="data-approved"' in html and 'type="checkbox"' in html
    assert 'name="data-note"' in html and 'maxlength="50"' in html
    assert 'name="data-limit"' in html and 'type="number"' in html


def test_server_side_errors_are_shown_next_to_their_field(task, rita):
    response = rita.post(
        page_of(task), {"action": "complete", "data-note": "x" * 60, "data-limit": "-3"}
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert "note" in form.errors and "limit" in form.errors
    assert fresh(task.saga).status == SagaStatus.RUNNING


def test_claiming_then_completing_finishes_the_step_with_the_form_data(task, rita):
    assert rita.post(page_of(task), {"action": "claim"}).status_code == 302
    response = rita.post(
        page_of(task),
        {"action": "complete", "data-approved": "on", "data-note": "ok", "data-limit": "5"},
    )
    assert response.status_code == 302 and response["Location"] == INBOX
    work()
    saga = fresh(task.saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["review"] == {"approved": True, "note": "ok", "limit": 5}
    assert saga.events.filter(type=EventType.TASK_COMPLETED, actor="user:rita").exists()


def test_a_task_claimed_by_another_member_cannot_be_completed(task, rita, client):
    sam = UserFactory(username="sam", groups=["reviewers", "viewers"])
    answers.task_claim(task_id=task.pk, user=sam)
    html = rita.get(page_of(task)).content.decode()
    assert "claimed by sam" in html and 'value="complete"' not in html
    response = rita.post(page_of(task), {"action": "reject", "reason": "no"})
    assert response.status_code == 409
    assert "claimed by sam" in response.content.decode()


def test_rejecting_needs_a_reason_and_compensates_the_saga(task, rita):
    assert rita.post(page_of(task), {"action": "reject", "reason": ""}).status_code == 400
    assert rita.post(page_of(task), {"action": "reject", "reason": "odd"}).status_code == 302
    work()
    assert fresh(task.saga).status == SagaStatus.COMPENSATED
