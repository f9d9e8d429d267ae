"""POST /api/v1/sagas/{id}/assign/, /acknowledge/ and /comments/: operators only."""

from __future__ import annotations

import pytest
from factories import UserFactory
from testkit import fresh, with_pivot

from bpm import services
from bpm.models import EventType, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stuck(the_world, drained):
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.STUCK
    return saga


def post(api, saga, what: str, body=None):
    return api.post(f"/api/v1/sagas/{saga.id}/{what}/", body or {}, format="json")


def test_an_operator_assigns_acknowledges_and_comments(operator, stuck):
    assigned = post(operator, stuck, "assign", {"assignee": "olga", "reason": "mine"})
    assert assigned.status_code == 200
    assert assigned.json()["assignee"] == "olga"
    acknowledged = post(operator, stuck, "acknowledge")
    assert acknowledged.json()["acknowledged_at"] is not None
    assert post(operator, stuck, "acknowledge").status_code == 409
    commented = post(operator, stuck, "comments", {"text": "<b>calling</b> the bank"})
    assert commented.status_code == 201
    events = operator.get(f"/api/v1/sagas/{stuck.id}/events/").json()["results"]
    (comment,) = [e for e in events if e["type"] == EventType.COMMENTED]
    assert comment["message"] == "<b>calling</b> the bank"
    unassigned = post(operator, stuck, "assign", {"assignee": None})
    assert unassigned.json()["assignee"] is None


def test_bad_bodies_are_400(operator, stuck):
    assert post(operator, stuck, "assign", {}).status_code == 400
    assert post(operator, stuck, "assign", {"assignee": "nobody-here"}).status_code == 400
    assert post(operator, stuck, "comments", {"text": ""}).status_code == 400
    assert post(operator, stuck, "comments", {"text": "x" * 2001}).status_code == 400
    assert post(operator, stuck, "comments", {"text": 5}).status_code == 400


@pytest.mark.parametrize("role", ["anonymous", "viewer", "shop", "rival"])
@pytest.mark.parametrize("what", ["assign", "acknowledge", "comments"])
def test_no_one_else_may(role, what, request, stuck, as_role):
    api = (
        as_role("clients", username="rival", is_staff=False)
        if role == "rival"
        else request.getfixturevalue(role)
    )
    response = post(api, stuck, what, {"assignee": "olga", "text": "hi"})
    assert response.status_code in (401, 403)
    saga = fresh(stuck)
    assert saga.assignee_id is None and saga.acknowledged_at is None


def test_the_client_that_owns_the_saga_may_not_comment_either(the_world, drained, client_of):
    owner = UserFactory(username="acme", groups=["clients"], is_staff=False)
    saga = services.saga_start(definition=with_pivot().name, input={}, user=owner, owner=owner)
    assert post(client_of(owner), saga, "comments", {"text": "hi"}).status_code == 403
