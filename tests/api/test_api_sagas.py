"""POST and GET /api/v1/sagas/, GET /api/v1/sagas/{id}/ and its events."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from testkit import with_pivot

from bpm import clock, services
from bpm.models import SagaInstance

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/sagas/"
ORDER_INPUT = {"customer_id": 1, "products": [1], "total": "5.00", "payment_method": "credit_card"}


def start(api, **body):
    return api.post(URL, {"definition": "place_order", "input": ORDER_INPUT, **body})


def test_a_client_starts_a_saga_and_gets_it_back(shop):
    response = start(shop, business_key="order-77")
    assert response.status_code == 201, response.json()
    saga = SagaInstance.objects.get()
    body = response.json()
    assert response["Location"] == f"http://testserver{URL}{saga.id}/"
    assert (body["id"], body["status"], body["business_key"]) == (
        str(saga.id),
        "RUNNING",
        "order-77",
    )
    assert body["definition"] == {"name": "place_order", "version": saga.definition.version}
    assert body["input"] == ORDER_INPUT
    assert [step["name"] for step in body["steps"]] == [
        "create_order",
        "take_payment",
        "approve_order",
        "send_confirmation",
    ]
    assert body["steps"][0] == {
        "name": "create_order",
        "position": 1,
        "kind": "COMPENSATABLE",
        "status": "PENDING",
        "attempts": 0,
        "compensation_status": None,
        "last_error": None,
    }


def test_a_version_may_be_pinned(shop):
    version = services.saga_start(definition="place_order", input=ORDER_INPUT, actor="t")
    response = start(shop, version=version.definition.version)
    assert response.status_code == 201
    assert (
        start(shop, version=99)
        .json()["details"]["version"][0]
        .startswith("saga definition 'place_order' has no version 99")
    )


@pytest.mark.parametrize(
    ("body", "path", "says"),
    [
        ({"input": {**ORDER_INPUT, "total": "free"}}, "input.total", "does not match"),
        ({"input": {"customer_id": 1}}, "input", "is a required property"),
        ({"input": {**ORDER_INPUT, "products": [1, "x"]}}, "input.products[1]", "not of type"),
        ({"input": [1]}, "input", "JSON object"),
        ({"definition": "nope"}, "definition", "no active saga definition named 'nope'"),
        ({"definition": 5}, "definition", "Not a valid string"),
        ({"version": "1"}, "version", "valid integer"),
        ({"business_key": "k" * 201}, "business_key", "no more than 200"),
        ({"idempotency_key": "x"}, "idempotency_key", "Unknown field"),
    ],
)
def test_an_input_its_definition_refuses_is_a_400_with_the_failing_path(shop, body, path, says):
    response = start(shop, **body)
    assert response.status_code == 400, response.json()
    details = response.json()["details"]
    assert list(details) == [path]
    assert says in details[path][0]
    assert not SagaInstance.objects.exists()


def test_a_viewer_may_not_start_a_saga(viewer):
    assert start(viewer).status_code == 403
    assert not SagaInstance.objects.exists()


def make_sagas():
    """Return three sagas made at different times: place_order twice, with_pivot once."""
    with_pivot()
    early = services.saga_start(
        definition="place_order", input=ORDER_INPUT, business_key="b-1", actor="t"
    )
    clock.advance(60)
    middle = services.saga_start(definition="with_pivot", input={}, actor="t")
    clock.advance(60)
    late = services.saga_start(
        definition="place_order", input=ORDER_INPUT, business_key="b-2", actor="t"
    )
    return early, middle, late


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [saga["id"] for saga in response.json()["results"]]


def test_sagas_are_listed_newest_first_and_filtered(viewer, the_world):
    early, middle, late = make_sagas()
    assert ids(viewer.get(URL)) == [str(late.id), str(middle.id), str(early.id)]
    assert ids(viewer.get(URL, {"definition": "with_pivot"})) == [str(middle.id)]
    assert ids(viewer.get(URL, {"business_key": "b-1"})) == [str(early.id)]
    assert ids(viewer.get(URL, {"status": "RUNNING", "definition": "place_order"})) == [
        str(late.id),
        str(early.id),
    ]
    assert ids(viewer.get(URL, {"status": "COMPLETED"})) == []
    after = (middle.created_at).isoformat().replace("+00:00", "Z")
    before = (late.created_at).isoformat()
    assert ids(viewer.get(URL, {"created_after": after, "created_before": before})) == [
        str(middle.id)
    ]


def test_the_list_is_cursor_paginated(viewer, the_world):
    early, middle, late = make_sagas()
    first = viewer.get(URL, {"page_size": 2}).json()
    assert [saga["id"] for saga in first["results"]] == [str(late.id), str(middle.id)]
    assert first["previous"] is None
    second = viewer.get(first["next"]).json()
    assert [saga["id"] for saga in second["results"]] == [str(early.id)]
    assert second["next"] is None


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ({"status": "running"}, "status"),
        ({"status": ""}, "status"),
        ({"definition": ""}, "definition"),
        ({"business_key": "a\x00"}, "business_key"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2026-02-30T00:00:00Z"}, "created_after"),
        ({"created_before": "2026-01-01T00:00:00"}, "created_before"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1000"}, "page_size"),
        ({"page_size": "9" * 5000}, "page_size"),
    ],
)
def test_a_bad_filter_is_a_400(viewer, query, path):
    response = viewer.get(URL, query)
    assert response.status_code == 400
    assert list(response.json()["details"]) == [path]


@pytest.mark.parametrize(
    "position", ["p=garbage", "o=-5", "p=9999-12-31 23:59:59-12:00", "p=2026-13-01 00:00:00"]
)
def test_a_forged_cursor_is_a_404(viewer, position):
    cursor = base64.b64encode(position.encode()).decode()
    response = viewer.get(URL, {"cursor": cursor})
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_the_list_costs_the_same_queries_for_many_sagas(viewer, django_assert_max_num_queries):
    for _ in range(30):
        services.saga_start(definition="place_order", input=ORDER_INPUT, actor="t")
    with django_assert_max_num_queries(5):
        response = viewer.get(URL, {"page_size": 25})
    assert len(response.json()["results"]) == 25


def test_a_saga_is_read_with_its_steps_and_an_unknown_one_is_a_404(viewer, the_world, drained):
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={"n": 1}, actor="t")
    drained()
    body = viewer.get(f"{URL}{saga.id}/").json()
    assert (body["status"], body["stuck_reason"]) == ("STUCK", "RETRIES_EXHAUSTED")
    assert body["input"] == {"n": 1}
    assert set(body["context"]) == {"a", "pivot"}
    after = body["steps"][2]
    assert (after["status"], after["attempts"], after["last_error"]) == (
        "FAILED",
        3,
        "after is unreachable",
    )
    assert body["updated_at"].endswith("Z")
    assert viewer.get(f"{URL}not-a-uuid/").json()["code"] == "not_found"
    missing = "00000000-0000-0000-0000-000000000000"
    assert viewer.get(f"{URL}{missing}/").status_code == 404


def test_the_timeline_is_oldest_first_with_each_events_step(viewer, the_world, drained):
    with_pivot()
    saga = services.saga_start(definition="with_pivot", input={}, actor="t")
    drained()
    events = viewer.get(f"{URL}{saga.id}/events/").json()["results"]
    assert [event["type"] for event in events][:3] == [
        "SAGA_STARTED",
        "STEP_SCHEDULED",
        "STEP_STARTED",
    ]
    assert events[-1]["type"] == "SAGA_COMPLETED"
    assert events[1]["step"] == "a" and events[1]["direction"] == "FORWARD"
    assert events[0]["step"] is None
    times = [event["at"] for event in events]
    assert times == sorted(times)


def test_the_timeline_costs_the_same_queries_for_many_events(
    viewer, the_world, drained, django_assert_max_num_queries
):
    with_pivot()
    saga = services.saga_start(definition="with_pivot", input={}, actor="t")
    drained()
    with django_assert_max_num_queries(6):
        response = viewer.get(f"{URL}{saga.id}/events/")
    assert len(response.json()["results"]) > 10


def test_the_timeline_of_an_unknown_saga_is_a_404(viewer):
    assert viewer.get(f"{URL}00000000-0000-0000-0000-000000000000/events/").status_code == 404


def test_a_client_reads_its_sagas_but_not_their_timeline(shop):
    saga = services.saga_start(
        definition="place_order", input=ORDER_INPUT, actor="t", owner=shop.user
    )
    assert shop.get(f"{URL}{saga.id}/").status_code == 200
    assert shop.get(f"{URL}{saga.id}/events/").status_code == 403


def test_created_filters_take_any_rfc_3339_time(viewer):
    services.saga_start(definition="place_order", input=ORDER_INPUT, actor="t")
    now = clock.now()
    for text in (
        (now - timedelta(hours=1)).isoformat(),
        "1985-04-12T23:20:50.52Z",
        "1996-12-19t16:39:57-08:00",
        "1990-12-31T23:59:60Z",
        "2026-01-01T00:00:00.123456789+01:00",
    ):
        assert viewer.get(URL, {"created_after": text}).status_code == 200, text
