"""GET /api/v1/definitions/ and /api/v1/definitions/{name}/."""

from __future__ import annotations

import pytest
from testkit import declare, with_pivot

from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaDefinition

pytestmark = pytest.mark.django_db


def test_definitions_are_listed_by_name_with_their_versions(viewer):
    with_pivot()
    declare("with_pivot", Step("only", "test.remote"))
    response = viewer.get("/api/v1/definitions/")
    assert response.status_code == 200
    by_name = {item["name"]: item for item in response.json()}
    assert by_name["with_pivot"] == {
        "name": "with_pivot",
        "title": "with_pivot",
        "latest_version": 2,
        "versions": [2, 1],
    }
    assert "place_order" in by_name


def test_a_definition_shows_its_latest_version_and_every_version_with_steps(shop):
    response = shop.get("/api/v1/definitions/place_order/")
    assert response.status_code == 200
    body = response.json()
    assert body["latest_version"] == body["latest"]["version"] == body["versions"][0]["version"]
    latest = body["latest"]
    assert latest["input_schema"]["required"] == [
        "customer_id",
        "products",
        "total",
        "payment_method",
    ]
    assert [step["name"] for step in latest["steps"]] == [
        "create_order",
        "take_payment",
        "approve_order",
        "send_confirmation",
    ]
    payment = latest["steps"][1]
    assert payment["kind"] == "COMPENSATABLE"
    assert payment["compensation"] == "payments.refund_payment"
    assert payment["retry"]["max_attempts"] == 4
    assert payment["timeout"] == 10.0


def test_an_inactive_version_is_listed_but_not_the_latest(viewer):
    with_pivot()
    second = declare("with_pivot", Step("only", "test.remote"))
    SagaDefinition.objects.filter(pk=second.pk).update(is_active=False)
    body = viewer.get("/api/v1/definitions/with_pivot/").json()
    assert body["latest_version"] == 1
    assert [(v["version"], v["is_active"]) for v in body["versions"]] == [(2, False), (1, True)]


def test_an_unknown_definition_is_a_404(viewer):
    response = viewer.get("/api/v1/definitions/nope/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_the_detail_costs_the_same_queries_for_many_versions(viewer, django_assert_max_num_queries):
    for count in range(1, 8):
        declare("growing", *(Step(f"s{n}", "test.remote") for n in range(count)))
    with django_assert_max_num_queries(6):
        response = viewer.get("/api/v1/definitions/growing/")
    assert len(response.json()["versions"]) == 7
    with django_assert_max_num_queries(5):
        viewer.get("/api/v1/definitions/")
