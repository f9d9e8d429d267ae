"""POST /api/v1/sagas/{id}/signals/{name}/, /api/v1/tasks/{token}/succeed|fail/, /api/v1/tasks/…"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings
from testkit import fresh, work
from waitkit import handed, signal_saga, task_saga, token_saga

from bpm import services
from bpm.models import EventType, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _forget_tokens():
    handed.clear()


def started(definition, owner=None):
    saga = services.saga_start(definition=definition.name, input={}, actor="test", owner=owner)
    work()
    return saga


def signal(api, saga, name="go", **body):
    return api.post(f"/api/v1/sagas/{saga.id}/signals/{name}/", body, format="json")


# --- signals ---------------------------------------------------------------------------------


def test_the_sagas_owner_signals_it_and_the_payload_becomes_the_output(the_world, shop):
    saga = started(signal_saga(), owner=shop.user)
    response = signal(shop, saga, payload={"reserved": 3})
    assert response.status_code == 202, response.json()
    assert response.json()["duplicate"] is False and response.json()["consumed"] is True
    work()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert fresh(saga).context["wait_go"] == {"reserved": 3}


def test_a_repeated_signal_answers_200_duplicate(the_world, operator):
    saga = started(signal_saga())
    assert signal(operator, saga, payload={"a": 1}).status_code == 202
    again = signal(operator, saga, payload={"a": 1})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    other = signal(operator, saga, payload={"a": 2})
    assert other.status_code == 409 and "another payload" in other.json()["message"]


def test_a_signal_before_the_step_waits_is_kept(the_world, operator):
    signal_saga()
    saga = services.saga_start(definition="signalled", input={}, actor="test")
    response = signal(operator, saga, payload={})
    assert response.status_code == 202 and response.json()["consumed"] is False


def test_who_may_signal_a_saga(the_world, shop, as_role, viewer, anonymous):
    saga = started(signal_saga(), owner=shop.user)
    other_client = as_role("clients", username="rival", is_staff=False)
    assert signal(anonymous, saga).status_code == 401
    assert signal(viewer, saga).status_code == 403
    assert signal(other_client, saga).status_code == 404
    assert signal(shop, saga, name="nope").status_code == 400
    assert signal(shop, saga, name="Bad Name!").status_code == 400
    assert signal(shop, saga, payload=[1]).status_code == 400
    assert signal(shop, saga, payload={"x": "y" * 70_000}).status_code == 400
    assert signal(shop, saga, payload={}, extra=1).status_code == 400
    assert fresh(saga).status == SagaStatus.RUNNING


# --- task tokens -----------------------------------------------------------------------------


def test_anyone_holding_the_token_completes_the_step_once(the_world, anonymous):
    saga = started(token_saga())
    url = f"/api/v1/tasks/{handed[0]}/succeed/"
    response = anonymous.post(url, {"output": {"score": 2}}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "SUCCEEDED"
    assert anonymous.post(url, {"output": {}}, format="json").status_code == 409
    work()
    assert fresh(saga).context["check"] == {"score": 2}


def test_a_token_fails_the_step_with_a_code_and_message(the_world, anonymous):
    saga = started(token_saga())
    url = f"/api/v1/tasks/{handed[0]}/fail/"
    assert anonymous.post(url, {"code": "bad code"}, format="json").status_code == 400
    response = anonymous.post(url, {"code": "FRAUD", "message": "no"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "FAILED"
    work()
    assert fresh(saga).status == SagaStatus.COMPENSATED


def test_an_unknown_token_is_404(anonymous):
    response = anonymous.post("/api/v1/tasks/tt_guess/succeed/", {}, format="json")
    assert response.status_code == 404


@override_settings(BPM_API_ANON_PER_MINUTE=3)
def test_token_guesses_are_throttled_per_address(anonymous):
    codes = [
        anonymous.post(f"/api/v1/tasks/tt_guess{n}/succeed/", {}, format="json").status_code
        for n in range(5)
    ]
    assert codes == [404, 404, 404, 429, 429]


# --- human tasks -----------------------------------------------------------------------------


@pytest.fixture
def reviewers(as_role):
    Group.objects.get_or_create(name="reviewers")
    return as_role("reviewers", username="rita"), as_role("reviewers", username="sam")


def test_a_reviewer_lists_claims_and_completes_a_task(the_world, reviewers):
    rita, _ = reviewers
    saga = started(task_saga())
    listed = rita.get("/api/v1/tasks/")
    assert listed.status_code == 200
    [task] = listed.json()["results"]
    assert task["status"] == "OPEN" and task["group"] == "reviewers" and task["step"] == "review"
    claimed = rita.post(f"/api/v1/tasks/{task['id']}/claim/")
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "rita"
    bad = rita.post(
        f"/api/v1/tasks/{task['id']}/complete/", {"data": {"approved": "yes"}}, format="json"
    )
    assert bad.status_code == 400 and "data.approved" in bad.json()["details"]
    done = rita.post(
        f"/api/v1/tasks/{task['id']}/complete/", {"data": {"approved": True}}, format="json"
    )
    assert done.status_code == 200 and done.json()["status"] == "SUCCEEDED"
    work()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert fresh(saga).events.filter(type=EventType.TASK_COMPLETED, actor="user:rita").exists()


def test_a_task_claimed_by_one_reviewer_is_409_for_another(the_world, reviewers):
    rita, sam = reviewers
    started(task_saga())
    task_id = rita.get("/api/v1/tasks/").json()["results"][0]["id"]
    rita.post(f"/api/v1/tasks/{task_id}/claim/")
    response = sam.post(f"/api/v1/tasks/{task_id}/reject/", {"reason": "no"}, format="json")
    assert response.status_code == 409 and "claimed by rita" in response.json()["message"]


def test_a_rejected_task_compensates_the_saga(the_world, reviewers):
    rita, _ = reviewers
    saga = started(task_saga())
    task_id = rita.get("/api/v1/tasks/").json()["results"][0]["id"]
    assert rita.post(f"/api/v1/tasks/{task_id}/reject/", {}, format="json").status_code == 400
    response = rita.post(f"/api/v1/tasks/{task_id}/reject/", {"reason": "odd"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "FAILED"
    work()
    assert fresh(saga).status == SagaStatus.COMPENSATED


def test_non_members_see_no_tasks_and_may_not_touch_one(the_world, reviewers, operator, anonymous):
    rita, _ = reviewers
    started(task_saga())
    task_id = rita.get("/api/v1/tasks/").json()["results"][0]["id"]
    assert operator.get("/api/v1/tasks/").json()["results"] == []
    assert operator.get(f"/api/v1/tasks/{task_id}/").status_code == 403
    assert operator.post(f"/api/v1/tasks/{task_id}/claim/").status_code == 403
    assert anonymous.get("/api/v1/tasks/").status_code == 401
    assert anonymous.post(f"/api/v1/tasks/{task_id}/claim/").status_code == 401
    assert rita.post("/api/v1/tasks/999999/claim/").status_code == 404
