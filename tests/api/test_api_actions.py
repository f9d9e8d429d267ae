"""POST /api/v1/sagas/{id}/retry/, /skip/, /compensate/ and /abort/: preview, apply, refuse."""

from __future__ import annotations

import pytest
from testkit import fresh, three_steps, with_pivot

from bpm import services
from bpm.models import EventType, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stuck(the_world, drained):
    """Return a saga stuck after its pivot: the last step ran out of retries."""
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={"n": 1}, actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.STUCK
    return saga


@pytest.fixture
def stuck_before_pivot(the_world, drained):
    """Return a saga stuck compensating: c refused, then b's compensation kept failing."""
    three_steps()
    the_world.will("c", "refuse:NO")
    the_world.will("b", "fault", "fault", "fault", direction="COMPENSATION")
    saga = services.saga_start(definition="three_compensatable_remote", input={}, actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.STUCK
    return saga


def act(api, saga, action: str, **body):
    return api.post(f"/api/v1/sagas/{saga.id}/{action}/", body)


def test_a_preview_answers_what_would_run_and_changes_nothing(operator, stuck):
    events = stuck.events.count()
    response = act(operator, stuck, "retry", reason="mail is back", preview=True)
    assert response.status_code == 200
    assert response.json() == {
        "action": "retry",
        "saga": str(stuck.id),
        "will_run": [{"step": "after", "direction": "FORWARD"}],
        "plan": ["run after"],
    }
    assert fresh(stuck).status == SagaStatus.STUCK
    assert stuck.events.count() == events


def test_a_retry_is_accepted_and_the_saga_completes(operator, stuck, drained):
    response = act(operator, stuck, "retry", reason="mail is back")
    assert response.status_code == 202
    assert response.json()["status"] == "RUNNING"
    assert response.json()["id"] == str(stuck.id)
    drained()
    assert fresh(stuck).status == SagaStatus.COMPLETED
    audit = stuck.events.get(type=EventType.OPERATOR_RETRY)
    assert (audit.actor, audit.message) == ("user:olga", "mail is back")


def test_a_retry_may_bring_a_new_input(operator, stuck, drained):
    response = act(operator, stuck, "retry", reason="fixed", input={"n": 2})
    assert response.status_code == 202
    assert response.json()["input"] == {"n": 2}
    assert stuck.events.filter(type=EventType.INPUT_EDITED).count() == 1


def test_a_skip_records_the_output_given(operator, stuck):
    response = act(operator, stuck, "skip", reason="sent by hand", output={"sent": True})
    assert response.status_code == 202
    assert response.json()["status"] == "COMPLETED"
    assert response.json()["context"]["after"] == {"sent": True}
    assert response.json()["steps"][2]["status"] == "SKIPPED"


def test_an_abort_closes_the_saga(operator, stuck):
    response = act(operator, stuck, "abort", reason="refunded by phone")
    assert (response.status_code, response.json()["status"]) == (202, "ABORTED")


def test_a_preview_lists_the_compensations_still_to_run_newest_first(operator, the_world, drained):
    three_steps()
    the_world.will("c", "fault", "fault", "fault")
    the_world.will("c", "fault", "fault", "fault", direction="COMPENSATION")
    saga = services.saga_start(definition="three_compensatable_remote", input={}, actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.STUCK
    response = act(operator, saga, "retry", reason="look", preview=True)
    assert response.json()["plan"] == ["compensate c", "compensate b", "compensate a"]


def test_compensate_after_the_pivot_is_a_409_and_changes_nothing(operator, stuck):
    response = act(operator, stuck, "compensate", reason="undo")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert "pivot" in response.json()["message"]
    assert fresh(stuck).status == SagaStatus.STUCK


def test_an_action_on_a_saga_that_is_not_stuck_is_a_409(operator, stuck, drained):
    act(operator, stuck, "retry", reason="go")
    drained()
    for action in ("retry", "skip", "compensate", "abort"):
        response = act(operator, stuck, action, reason="again")
        assert response.status_code == 409, action
        assert "not STUCK" in response.json()["message"]


def test_a_compensating_saga_refuses_compensate_but_may_be_retried(
    operator, stuck_before_pivot, drained
):
    assert act(operator, stuck_before_pivot, "compensate", reason="x").status_code == 409
    response = act(operator, stuck_before_pivot, "retry", reason="undo b again", preview=True)
    assert response.json()["plan"] == ["compensate b", "compensate a"]


@pytest.mark.parametrize(
    ("action", "body", "path"),
    [
        ("retry", {}, "reason"),
        ("retry", {"reason": "   "}, "reason"),
        ("retry", {"reason": "x" * 1001}, "reason"),
        ("retry", {"reason": "x", "preview": "yes"}, "preview"),
        ("retry", {"reason": "x", "input": [1]}, "input"),
        ("skip", {"reason": "x", "output": "done"}, "output"),
        ("abort", {"reason": "x", "input": {}}, "input"),
        ("compensate", {"reason": 42}, "reason"),
    ],
)
def test_bad_action_input_is_a_400(operator, stuck, action, body, path):
    response = act(operator, stuck, action, **body)
    assert response.status_code == 400
    assert list(response.json()["details"]) == [path]
    assert fresh(stuck).status == SagaStatus.STUCK


def test_an_action_on_an_unknown_saga_is_a_404(operator):
    for saga_id in ("00000000-0000-0000-0000-000000000000", "nope"):
        response = operator.post(f"/api/v1/sagas/{saga_id}/abort/", {"reason": "x"})
        assert response.status_code == 404


@pytest.mark.parametrize("action", ["retry", "skip", "compensate", "abort"])
@pytest.mark.parametrize("role", ["viewer", "shop"])
def test_viewers_and_clients_may_not_act(request, stuck, role, action):
    api = request.getfixturevalue(role)
    events = stuck.events.count()
    response = act(api, stuck, action, reason="try", preview=True)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert stuck.events.count() == events
