"""POST /api/v1/definitions/: designers compose drafts in the designers' shape; another approves."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from bpm import definitions
from bpm.models import DefinitionStatus, SagaDefinition

pytestmark = pytest.mark.django_db

COMPOSE = reverse("api:definitions")

SHAPE: dict[str, Any] = {
    "name": "ship_parcel",
    "title": "Ship a parcel",
    "input_schema": {"type": "object", "properties": {"parcel": {"type": "string"}}},
    "steps": [
        {
            "name": "book",
            "action": "test.remote",
            "compensation": "test.remote",
            "kind": "compensatable",
            "after": None,
            "wait": None,
            "retry": {
                "max_attempts": 5,
                "initial_backoff": 1,
                "multiplier": 2,
                "max_backoff": 30,
                "jitter": 0.1,
            },
            "timeout": 20,
            "queue": "default",
        },
        {"name": "confirm", "action": "test.remote", "kind": "pivot"},
    ],
}


def shape(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SHAPE)
    body.update(changes)
    return body


def step(index: int = 0, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SHAPE)
    body["steps"][index].update(changes)
    return body


def approve_url(name: str, version: int) -> str:
    return reverse("api:definition-approve", args=[name, version])


@pytest.fixture
def designer(as_role):
    return as_role("designers", username="dora")


@pytest.fixture
def second_designer(as_role):
    return as_role("designers", username="dan")


def test_a_designer_composes_a_draft_that_starts_no_saga(designer):
    response = designer.post(COMPOSE, SHAPE, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["version"], body["status"]) == ("ship_parcel", 1, "DRAFT")
    assert body["composed_by"] == "dora"
    assert body["steps"][0]["retry"]["max_attempts"] == 5
    assert body["steps"][1]["kind"] == "pivot"
    assert response["Location"].endswith("/api/v1/definitions/ship_parcel/versions/1/")
    assert definitions.published_version("ship_parcel") is None


def test_the_read_back_shape_composes_the_same_version(designer):
    created = designer.post(COMPOSE, SHAPE, format="json").json()
    again = {key: created[key] for key in ("name", "title", "input_schema", "steps")}
    response = designer.post(COMPOSE, again, format="json")
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert SagaDefinition.objects.filter(name="ship_parcel").count() == 1


def test_a_second_designer_approves_and_publishes(designer, second_designer):
    designer.post(COMPOSE, SHAPE, format="json")
    refused = designer.post(approve_url("ship_parcel", 1), {"comment": "mine"}, format="json")
    assert refused.status_code == 403
    assert "may not approve" in refused.json()["message"]
    response = second_designer.post(
        approve_url("ship_parcel", 1), {"comment": "checked"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["reviewed_by"]) == ("PUBLISHED", "dan")
    assert definitions.published_version("ship_parcel").version == 1
    twice = second_designer.post(approve_url("ship_parcel", 1), {"comment": "x"}, format="json")
    assert twice.status_code == 409


def test_approving_needs_a_comment(designer, second_designer):
    designer.post(COMPOSE, SHAPE, format="json")
    response = second_designer.post(approve_url("ship_parcel", 1), {}, format="json")
    assert response.status_code == 400
    assert "comment" in response.json()["details"]


def test_a_second_designer_may_reject(designer, second_designer):
    designer.post(COMPOSE, SHAPE, format="json")
    url = reverse("api:definition-reject", args=["ship_parcel", 1])
    response = second_designer.post(url, {"reason": "no courier"}, format="json")
    assert response.json()["status"] == DefinitionStatus.REJECTED


@pytest.mark.parametrize("role", ["anonymous", "shop", "viewer", "operator"])
def test_only_designers_compose(role, request):
    api = request.getfixturevalue(role)
    response = api.post(COMPOSE, SHAPE, format="json")
    assert response.status_code == (401 if role == "anonymous" else 403)
    assert not SagaDefinition.objects.filter(name="ship_parcel").exists()


@pytest.mark.parametrize("role", ["anonymous", "shop", "viewer", "operator"])
def test_only_designers_approve(role, request, designer):
    designer.post(COMPOSE, SHAPE, format="json")
    api = request.getfixturevalue(role)
    response = api.post(approve_url("ship_parcel", 1), {"comment": "ok"}, format="json")
    assert response.status_code == (401 if role == "anonymous" else 403)
    assert definitions.published_version("ship_parcel") is None


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_drafts_are_hidden_from_readers_who_cannot_compose(role, request, designer):
    designer.post(COMPOSE, SHAPE, format="json")
    api = request.getfixturevalue(role)
    detail = api.get(reverse("api:definition-version", args=["ship_parcel", 1]))
    assert detail.status_code == 404
    assert api.get(reverse("api:definition-versions", args=["ship_parcel"])).status_code == 404
    seen = designer.get(reverse("api:definition-versions", args=["ship_parcel"]))
    assert [version["status"] for version in seen.json()] == ["DRAFT"]


def test_a_client_sees_published_versions_but_no_draft(shop, designer, as_role):
    designer.post(COMPOSE, SHAPE, format="json")
    versions = reverse("api:definition-versions", args=["ship_parcel"])
    assert shop.get(versions).status_code == 404
    approver = as_role("designers", username="dan")
    approver.post(approve_url("ship_parcel", 1), {"comment": "ok"}, format="json")
    assert designer.post(COMPOSE, step(0, timeout=25), format="json").status_code == 201
    assert designer.get(versions).json()[0]["status"] == "DRAFT"
    assert [version["version"] for version in shop.get(versions).json()] == [1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (step(0, action="nobody.registered"), "steps"),
        (step(0, kind="PIVOT_ISH"), "steps[0].kind"),
        (step(1, kind="compensatable"), "steps"),  # a pivot is gone: fine; see next
        (step(0, after=["confirm"]), "steps"),  # a cycle: book → confirm → book
        (step(0, after=["nowhere"]), "steps"),
        (step(0, after="confirm"), "steps[0].after"),
        (step(0, after=[1]), "steps[0].after[0]"),
        (step(0, wait={"signal": "go"}), "steps"),  # a signal wait has no action
        (step(0, wait="go"), "steps[0].wait"),
        (step(0, surprise=1), "steps[0].surprise"),
        (shape(extra=True), "extra"),
        (shape(name="schiff_über"), "name"),
        (shape(name="a" * 101), "name"),
        (shape(steps=[]), "steps"),
        (shape(steps=[SHAPE["steps"][1]] * 51), "steps"),
        (step(0, name="bück"), "steps[0].name"),
        (step(0, timeout="20"), "steps[0].timeout"),
        (step(0, retry={"max_attempts": 5.5}), "steps[0].retry.max_attempts"),
        (step(0, retry={"max_attempts": "5"}), "steps[0].retry.max_attempts"),
        (step(0, retry={"max_attempts": 0}), "steps[0].retry.max_attempts"),
        (step(0, retry={"jitter": 2}), "steps[0].retry.jitter"),
        (
            shape(input_schema={"type": "object", "properties": {"x": {"$ref": "http://x"}}}),
            "input_schema",
        ),
        (
            step(0, action={"http": {"method": "POST", "url": "file:///etc/passwd"}}),
            "steps[0].action",
        ),
    ],
)
def test_hostile_shapes_are_refused_with_the_path(designer, body, field):
    response = designer.post(COMPOSE, body, format="json")
    if field == "steps" and body["steps"] and body["steps"][-1].get("kind") == "compensatable":
        # Two compensatable steps and no pivot is a valid saga.
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    if field:
        assert field in response.json()["details"], response.json()
    assert not SagaDefinition.objects.filter(status=DefinitionStatus.DRAFT).exists()


def test_a_number_too_large_for_a_float_is_refused(designer):
    raw = json.dumps(SHAPE).replace('"timeout": 20', '"timeout": 1e999')
    response = designer.post(COMPOSE, raw, content_type="application/json")
    assert response.status_code == 400


def test_an_integer_written_as_5_0_is_the_integer_5(designer):
    response = designer.post(COMPOSE, step(0, retry={"max_attempts": 5.0}), format="json")
    assert response.status_code == 201
    assert response.json()["steps"][0]["retry"]["max_attempts"] == 5


def test_a_unicode_title_is_kept(designer):
    response = designer.post(COMPOSE, shape(title="Paket verschicken 📦"), format="json")
    assert response.json()["title"] == "Paket verschicken 📦"


def test_a_body_over_the_upload_limit_is_413(designer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = designer.post(COMPOSE, shape(title="x" * 20_000), format="json")
    assert response.status_code == 413


def test_an_http_action_round_trips(designer, settings):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["payments.example"]
    settings.BPM_HTTP_SECRETS = {"PAY": "token"}
    call = {
        "method": "POST",
        "url": "https://payments.example/payments/{input.parcel}",
        "body": {"parcel": {"$ref": "/input/parcel"}},
        "headers": {"Authorization": {"secret": "PAY", "prefix": "Bearer "}},
    }
    response = designer.post(COMPOSE, step(0, action={"http": call}), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["steps"][0]["action"] == {"http": call}
    stored = SagaDefinition.objects.get(name="ship_parcel").steps.get(name="book")
    assert stored.action == "http POST https://payments.example/payments/{input.parcel}"
    assert stored.action_http == call


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"method": "POST", "url": "https://evil.example/x"}, "not listed"),
        ({"method": "POST", "url": "https://{input.host}/x"}, "written out"),
        ({"method": "BREW", "url": "https://payments.example/x"}, "method"),
        ({"method": "POST", "url": "https://payments.example/x", "verb": 1}, "unknown key"),
        (
            {
                "method": "POST",
                "url": "https://payments.example/x",
                "headers": {"Authorization": "Bearer abc"},
            },
            "credential",
        ),
        (
            {
                "method": "POST",
                "url": "https://payments.example/x",
                "headers": {"X-Note": "Bearer abcdef"},
            },
            "looks like a credential",
        ),
        (
            {
                "method": "POST",
                "url": "https://payments.example/x",
                "headers": {"Authorization": {"secret": "NOPE"}},
            },
            "no secret 'NOPE'",
        ),
        (
            {"method": "POST", "url": "https://payments.example/x", "body": {"$ref": "input/x"}},
            "JSON pointer",
        ),
        (
            {"method": "POST", "url": "https://payments.example/{inputs.x}"},
            "must start with one of",
        ),
        ({"method": "GET", "url": "https://payments.example/x", "body": {}}, "GET sends no body"),
        ({"method": "POST", "url": "https://user:pw@payments.example/x"}, "credentials"),
        (
            {"method": "POST", "url": "https://payments.example/x", "headers": {"Host": "a"}},
            "set by the client",
        ),
    ],
)
def test_http_actions_are_checked_when_saved(designer, settings, call, message):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["payments.example"]
    response = designer.post(COMPOSE, step(0, action={"http": call}), format="json")
    assert response.status_code == 400
    assert message in str(response.json()["details"]), response.json()


@pytest.mark.django_db(transaction=True)
def test_50_concurrent_posts_with_one_idempotency_key_make_one_draft(as_role):
    from concurrent.futures import ThreadPoolExecutor

    from api_client_threads import token_client

    designer = as_role("designers", username="dora")
    token = designer._credentials["HTTP_AUTHORIZATION"]

    def post(_: int) -> int:
        try:
            api = token_client(token)
            response = api.post(
                COMPOSE, SHAPE, format="json", HTTP_IDEMPOTENCY_KEY="compose-ship-parcel-1"
            )
            return response.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(post, range(50)))
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    assert SagaDefinition.objects.filter(name="ship_parcel").count() == 1
