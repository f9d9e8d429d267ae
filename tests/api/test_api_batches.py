"""POST /api/v1/batches/ and GET /api/v1/batches/<id>/: batch repairs through the API."""

from __future__ import annotations

import pytest
from batch_kit import mailing
from rest_framework.test import APIClient
from testkit import work

from benchmarks.stuck_sagas import seed_stuck
from bpm.models import Batch, BatchStatus, SagaInstance, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/batches/"


@pytest.fixture
def stuck(the_world):
    return seed_stuck(mailing(), 4, {"email": "a@example.com"})


def test_an_operator_starts_a_batch_with_the_filter_as_query_parameters(operator, stuck):
    response = operator.post(
        # Sorting and paging select nothing: a list URL's stale cursor is dropped, not refused.
        f"{URL}?status=STUCK&definition=mailing&sort=-created&size=10&cursor=stale",
        {"action": "retry", "patch": {"tier": "gold"}, "reason": "relay back"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["matched"], body["status"], body["filter"]) == (
        4,
        "PENDING",
        "status=STUCK&definition=mailing",
    )
    assert response["Location"].endswith(f"/api/v1/batches/{body['id']}/")
    work()
    progress = operator.get(f"{URL}{body['id']}/").json()
    assert (progress["done"], progress["percent"]) == (4, 100)
    assert progress["status"] in ("RUNNING", "FINISHED")
    assert SagaInstance.objects.filter(input__tier="gold").count() == 4
    assert [row["id"] for row in operator.get(URL).json()["results"]] == [body["id"]]


def test_the_filter_as_an_object_and_a_preview_that_starts_nothing(operator, stuck):
    response = operator.post(
        URL,
        {"filter": {"status": "STUCK"}, "action": "skip", "output": {}, "preview": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "matched": 4,
        "sampled": 4,
        "plans": [{"plan": ["run confirm"], "sagas": 4}],
        "refusals": [],
    }
    assert not Batch.objects.exists()


def test_invalid_requests_get_400_with_a_message_per_field(operator, stuck):
    bad_filter = operator.post(
        URL,
        {"filter": {"status": "NOPE", "colour": 1}, "action": "abort", "reason": "x"},
        format="json",
    )
    assert bad_filter.status_code == 400
    assert set(bad_filter.json()["details"]) == {"filter.status", "filter.colour"}
    both = operator.post(f"{URL}?status=STUCK", {"filter": {}, "action": "abort"}, format="json")
    assert both.status_code == 400 and "filter" in both.json()["details"]
    no_reason = operator.post(URL, {"filter": {}, "action": "abort"}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["details"]
    wrong_patch = operator.post(
        URL, {"action": "abort", "patch": {"a": 1}, "reason": "x"}, format="json"
    )
    assert wrong_patch.status_code == 400 and "patch" in wrong_patch.json()["details"]
    assert operator.post(URL, {"action": "explode"}, format="json").status_code == 400
    assert not Batch.objects.exists()


def test_viewers_and_clients_may_not_start_one_and_clients_may_not_read_them(as_role, stuck):
    viewer, client = as_role("viewers"), as_role("clients")
    body = {"action": "abort", "reason": "x"}
    assert viewer.post(URL, body, format="json").status_code == 403
    assert client.post(URL, body, format="json").status_code == 403
    assert client.get(URL).status_code == 403
    assert viewer.get(URL).status_code == 200
    assert APIClient().post(URL, body, format="json").status_code in (401, 403)
    assert APIClient().get(URL).status_code in (401, 403)
    assert not Batch.objects.exists()


def test_an_operator_cancels_a_batch_and_a_second_cancel_conflicts(operator, as_role, stuck):
    batch_id = operator.post(URL, {"action": "abort", "reason": "x"}, format="json").json()["id"]
    assert as_role("viewers").post(f"{URL}{batch_id}/cancel/").status_code == 403
    response = operator.post(f"{URL}{batch_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == BatchStatus.CANCELLED
    assert operator.post(f"{URL}{batch_id}/cancel/").status_code == 409
    assert operator.get(f"{URL}999999/").status_code == 404
    work()
    assert SagaInstance.objects.filter(status=SagaStatus.STUCK).count() == 4
