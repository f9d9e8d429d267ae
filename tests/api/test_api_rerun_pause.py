"""POST /api/v1/sagas/{id}/rerun/, /pause/, /resume/ and /definitions/{name}/pause/, /resume/."""

from __future__ import annotations

import pytest
from factories import UserFactory
from testkit import fresh, three_steps

from bpm import services
from bpm.models import PauseScope, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def completed(the_world, drained):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    drained()
    return fresh(saga)


def act(api, saga, action: str, **body):
    return api.post(f"/api/v1/sagas/{saga.id}/{action}/", body, format="json")


def test_a_rerun_preview_lists_the_steps_and_an_applied_one_runs_them(operator, completed, drained):
    preview = act(operator, completed, "rerun", step="b", reason="again", preview=True)
    assert preview.status_code == 200
    assert preview.json()["plan"] == ["run b", "run c"]
    response = act(operator, completed, "rerun", step="b", reason="again")
    assert response.status_code == 202
    assert response.json()["status"] == "RUNNING"
    drained()
    assert fresh(completed).status == SagaStatus.COMPLETED


def test_a_rerun_without_a_step_or_reason_is_400_and_an_unknown_step_too(operator, completed):
    assert act(operator, completed, "rerun", reason="x").status_code == 400
    assert act(operator, completed, "rerun", step="b").status_code == 400
    response = act(operator, completed, "rerun", step="nope", reason="x")
    assert response.status_code == 400
    assert "no step 'nope'" in response.content.decode()


def test_pause_then_resume(operator, the_world, drained):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="test")
    assert act(operator, saga, "pause", reason="hold").status_code == 202
    assert fresh(saga).paused == PauseScope.SAGA
    assert act(operator, saga, "pause", reason="hold").status_code == 409
    assert act(operator, saga, "resume", reason="go").status_code == 202
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED


def test_a_definition_pause_previews_then_holds_its_sagas(operator, the_world):
    definition = three_steps()
    saga = services.saga_start(definition=definition.name, input={}, actor="test")
    url = f"/api/v1/definitions/{definition.name}/pause/"
    preview = operator.post(
        url, {"version": definition.version, "reason": "x", "preview": True}, format="json"
    )
    assert preview.json() == {
        "name": definition.name,
        "version": definition.version,
        "paused": False,
        "sagas": 1,
        "applied": False,
    }
    applied = operator.post(url, {"version": definition.version, "reason": "x"}, format="json")
    assert applied.json()["paused"] is True
    assert fresh(saga).paused == PauseScope.DEFINITION
    again = operator.post(url, {"version": definition.version, "reason": "x"}, format="json")
    assert again.status_code == 409
    resume = operator.post(
        f"/api/v1/definitions/{definition.name}/resume/",
        {"version": definition.version, "reason": "y"},
        format="json",
    )
    assert resume.json()["sagas"] == 1
    assert fresh(saga).paused == PauseScope.NONE


@pytest.mark.parametrize("role", ["anonymous", "viewer", "shop", "other_shop"])
@pytest.mark.parametrize("action", ["rerun", "pause", "resume"])
def test_no_one_but_an_operator_may_act(role, action, request, completed, as_role):
    api = (
        as_role("clients", username="rival", is_staff=False)
        if role == "other_shop"
        else request.getfixturevalue(role)
    )
    response = act(api, completed, action, step="c", reason="x")
    assert response.status_code in (401, 403, 404)
    assert fresh(completed).status == SagaStatus.COMPLETED


@pytest.mark.parametrize("role", ["anonymous", "viewer", "shop"])
def test_no_one_but_an_operator_may_pause_a_definition(role, request, the_world):
    definition = three_steps()
    api = request.getfixturevalue(role)
    response = api.post(
        f"/api/v1/definitions/{definition.name}/pause/",
        {"version": definition.version, "reason": "x"},
        format="json",
    )
    assert response.status_code in (401, 403)
    definition.refresh_from_db()
    assert definition.paused_at is None


def test_the_owning_client_may_not_rerun_its_own_saga(the_world, drained, client_of):
    owner = UserFactory(username="acme", groups=["clients"], is_staff=False)
    saga = services.saga_start(definition=three_steps().name, input={}, user=owner, owner=owner)
    drained()
    response = act(client_of(owner), saga, "rerun", step="c", reason="x")
    assert response.status_code == 403
