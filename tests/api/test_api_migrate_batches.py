"""POST /api/v1/batches/ with action migrate: moving stuck sagas to another version."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from testkit import FAST, declare, work

from benchmarks.stuck_sagas import seed_stuck
from bpm.declarations import StepDeclaration as Step
from bpm.models import Batch, EventType, SagaEvent, SagaInstance

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/batches/"
FILTER = {"definition": "parcel", "version": 1, "status": "STUCK"}


def parcel(*extra: Step):
    return declare(
        "parcel",
        Step("send", "test.local", "test.local", retry=FAST),
        Step("confirm", "test.local", "test.local", retry=FAST),
        *extra,
    )


@pytest.fixture
def stuck(the_world):
    """Four parcels stuck on `send` in v1; v2 adds `notify` after `confirm`."""
    ids = seed_stuck(parcel(), 4, {})
    parcel(Step("notify", "test.local", "test.local", retry=FAST))
    return ids


def body(**fields):
    return {"filter": FILTER, "action": "migrate", "target_version": 2, **fields}


def test_an_operator_previews_then_moves_stuck_sagas(operator, stuck):
    preview = operator.post(URL, body(preview=True), format="json")
    assert preview.status_code == 200, preview.json()
    assert preview.json() == {
        "matched": 4,
        "sampled": 4,
        "plans": [
            {"plan": ["move from v1 to v2", "run send", "run confirm", "run notify"], "sagas": 4}
        ],
        "refusals": [],
    }
    response = operator.post(URL, body(reason="v2 notifies"), format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["action"], response.json()["target_version"]) == ("migrate", 2)
    work()
    assert operator.get(f"{URL}{response.json()['id']}/").json()["done"] == 4
    assert set(SagaInstance.objects.values_list("definition__version", flat=True)) == {2}
    events = SagaEvent.objects.filter(type=EventType.SAGA_MOVED)
    assert {event.message for event in events} == {
        "moved from version 1 to 2 by user:olga: v2 notifies"
    }
    assert operator.get(URL).json()["results"][0]["target_version"] == 2


def test_refusals_are_grouped_with_counts(operator, stuck):
    declare("parcel", Step("confirm", "test.local", "test.local", retry=FAST))  # v3: no `send`
    response = operator.post(URL, body(target_version=3, preview=True), format="json")
    assert response.json()["plans"] == []
    (refusal,) = response.json()["refusals"]
    assert refusal["sagas"] == 4
    assert refusal["reason"] == (
        "cannot move to parcel v3: step send already ran but v3 has no step send"
    )


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (5.0, "not 5.0"),
        ("two", "not 'two'"),
        ("2", None),
        (9, "parcel has no version 9"),
        (None, "not nothing"),
        ([2], "not [2]"),
    ],
)
def test_hostile_target_versions_are_refused_per_field(operator, stuck, version, message):
    response = operator.post(URL, body(target_version=version, preview=True), format="json")
    if message is None:  # a form's digits are the number
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.json()
    (said,) = response.json()["details"]["target_version"]
    assert message in said
    assert not Batch.objects.exists()


def test_a_reason_and_a_definition_in_the_filter_are_required(operator, stuck):
    no_reason = operator.post(URL, body(), format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["details"]
    no_name = operator.post(URL, body(filter={"status": "STUCK"}, reason="x"), format="json")
    assert no_name.status_code == 400
    assert "filter.definition" in no_name.json()["details"]
    assert not Batch.objects.exists()


def test_only_operators_migrate(as_role, stuck):
    for group in ("viewers", "clients", "designers"):
        response = as_role(group).post(URL, body(reason="x"), format="json")
        assert response.status_code == 403, group
    assert APIClient().post(URL, body(reason="x"), format="json").status_code in (401, 403)
    assert not Batch.objects.exists()
    assert set(SagaInstance.objects.values_list("definition__version", flat=True)) == {1}
