"""The saga list: filters, search, sorting and keyset pages; bad input is shown, never a 500."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from saga_rows import make_sagas
from testkit import three_steps, with_pivot

from bpm import clock
from bpm.dashboard import keyset
from bpm.dashboard.saga_filter import ORDERINGS
from bpm.models import SagaInstance, SagaStatus, StuckReason

URL = reverse("dashboard:sagas")

pytestmark = pytest.mark.django_db


@pytest.fixture
def definition():
    return three_steps()


def listed(client, **params):
    """Return the ids the list shows on the page for these query parameters."""
    response = client.get(URL, params)
    assert response.status_code == 200
    assert response.context["page"] is not None, response.context["form"].errors
    return [saga.id for saga in response.context["page"].rows]


def every_page(client, **params):
    """Follow the next links from the first page; return the pages' ids and the last response."""
    pages, cursor = [], None
    while True:
        response = client.get(URL, {**params, **({"cursor": cursor} if cursor else {})})
        page = response.context["page"]
        pages.append([saga.id for saga in page.rows])
        cursor = page.next_cursor
        if cursor is None:
            return pages, response


def errors(response):
    return response.context["form"].errors


def test_a_viewer_sees_sagas_linked_to_their_pages(viewer, definition):
    (saga,) = make_sagas(definition, 1, business_key="order-1")
    response = viewer.get(URL)
    assert response.status_code == 200
    content = response.content.decode()
    assert f'href="{reverse("dashboard:saga", args=[saga.id])}"' in content
    assert str(saga.id)[:8] in content
    assert f'{definition.name} <span class="quiet">v{definition.version}</span>' in content
    assert 'class="status-badge status-running"' in content
    assert "order-1" in content


def test_newest_sagas_come_first_by_default(viewer, definition):
    sagas = make_sagas(definition, 5)
    assert listed(viewer) == [saga.id for saga in reversed(sagas)]


def test_it_filters_by_status(viewer, definition):
    make_sagas(definition, 3, status=SagaStatus.COMPLETED)
    stuck = make_sagas(definition, 2, status=SagaStatus.STUCK, stuck_reason="TIMED_OUT")
    assert set(listed(viewer, status="STUCK")) == {saga.id for saga in stuck}


def test_it_filters_by_definition_and_version(viewer, definition):
    pivot = with_pivot()
    mine = make_sagas(pivot, 2)
    make_sagas(definition, 3)
    assert set(listed(viewer, definition=pivot.name)) == {saga.id for saga in mine}
    assert set(listed(viewer, definition=pivot.name, version=pivot.version)) == {
        saga.id for saga in mine
    }


def test_it_filters_by_stuck_reason(viewer, definition):
    timed_out = make_sagas(definition, 2, status="STUCK", stuck_reason=StuckReason.TIMED_OUT)
    make_sagas(definition, 2, status="STUCK", stuck_reason=StuckReason.RETRIES_EXHAUSTED)
    assert set(listed(viewer, reason="TIMED_OUT")) == {saga.id for saga in timed_out}


def test_it_filters_by_creation_time_from_inclusive_to_exclusive(viewer, definition):
    start = clock.now().replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)
    sagas = make_sagas(definition, 6, start=start, spacing=timedelta(minutes=10))
    shown = listed(
        viewer, created_from=f"{start:%Y-%m-%d}T10:10", created_to=f"{start:%Y-%m-%d}T10:40"
    )
    assert shown == [saga.id for saga in reversed(sagas[1:4])]


def test_search_finds_a_saga_by_its_full_id_or_a_prefix_of_it(viewer, definition):
    sagas = make_sagas(definition, 20)
    target = sagas[7]
    assert listed(viewer, q=str(target.id)) == [target.id]
    assert listed(viewer, q=str(target.id).upper()) == [target.id]
    prefix = str(target.id)[:13]  # with the dash
    expected = {saga.id for saga in sagas if str(saga.id).startswith(prefix)}
    assert set(listed(viewer, q=prefix)) == expected
    assert target.id in expected


def test_search_finds_a_saga_by_business_or_idempotency_key(viewer, definition):
    make_sagas(definition, 3, business_key="other")
    (by_business,) = make_sagas(definition, 1, business_key="order-42")
    (by_idempotency,) = make_sagas(definition, 1, idempotency_key="checkout-9")
    assert listed(viewer, q="order-42") == [by_business.id]
    assert listed(viewer, q="checkout-9") == [by_idempotency.id]
    assert listed(viewer, q="no-such-key") == []


def test_filters_combine(viewer, definition):
    make_sagas(definition, 2, status="STUCK", stuck_reason="TIMED_OUT", business_key="k1")
    (wanted,) = make_sagas(
        definition, 1, status="STUCK", stuck_reason="NO_PROGRESS", business_key="k1"
    )
    assert listed(viewer, status="STUCK", reason="NO_PROGRESS", q="k1") == [wanted.id]


@pytest.mark.parametrize("sort", list(ORDERINGS))
def test_each_sort_pages_through_every_saga_once(viewer, definition, sort):
    now = clock.now()
    # Ties on every sort key, so only the id tells rows apart.
    sagas = [
        *make_sagas(definition, 23, status=SagaStatus.COMPLETED, start=now, spacing=timedelta(0)),
        *make_sagas(definition, 17, status=SagaStatus.RUNNING, start=now - timedelta(hours=1)),
        *make_sagas(
            definition,
            20,
            status=SagaStatus.STUCK,
            stuck_reason="TIMED_OUT",
            start=now - timedelta(days=1),
            spacing=timedelta(seconds=30),
        ),
    ]
    ordering = ORDERINGS[sort]
    expected = sorted(
        sagas,
        key=lambda saga: tuple(getattr(saga, f) for f in ordering.fields),
        reverse=ordering.descending,
    )
    pages, _ = every_page(viewer, sort=sort, size=10)
    assert [len(page) for page in pages] == [10] * 6
    assert [saga_id for page in pages for saga_id in page] == [saga.id for saga in expected]


def test_previous_links_lead_back_through_the_same_pages(viewer, definition):
    make_sagas(definition, 35)
    forward, last = every_page(viewer, size=10)
    backward = [[saga.id for saga in last.context["page"].rows]]
    cursor = last.context["page"].previous_cursor
    while cursor:
        page = viewer.get(URL, {"size": 10, "cursor": cursor}).context["page"]
        backward.append([saga.id for saga in page.rows])
        cursor = page.previous_cursor
    assert list(reversed(backward)) == forward
    assert [len(page) for page in forward] == [10, 10, 10, 5]


def test_the_first_page_has_no_previous_link_and_the_last_no_next(viewer, definition):
    make_sagas(definition, 15)
    first = viewer.get(URL, {"size": 10})
    assert b'rel="next"' in first.content and b'rel="prev"' not in first.content
    second = viewer.get(URL, {"size": 10, "cursor": first.context["page"].next_cursor})
    assert b'rel="prev"' in second.content and b'rel="next"' not in second.content
    assert b'rel="first"' in second.content


def test_sorting_by_status_and_update_time(viewer, definition):
    now = clock.now()
    (stuck,) = make_sagas(
        definition,
        1,
        status="STUCK",
        stuck_reason="TIMED_OUT",
        start=now,
        updated_at=now - timedelta(hours=2),
    )
    (completed,) = make_sagas(definition, 1, status="COMPLETED", start=now - timedelta(hours=1))
    (running,) = make_sagas(
        definition, 1, status="RUNNING", start=now - timedelta(hours=3), updated_at=now
    )
    assert listed(viewer, sort="status") == [completed.id, running.id, stuck.id]
    assert listed(viewer, sort="-status") == [stuck.id, running.id, completed.id]
    assert listed(viewer, sort="-updated") == [running.id, completed.id, stuck.id]
    assert listed(viewer, sort="updated") == [stuck.id, completed.id, running.id]
    assert listed(viewer, sort="created") == [running.id, completed.id, stuck.id]


def test_column_headers_switch_the_sort_and_keep_the_filters(viewer, definition):
    make_sagas(definition, 2, status="COMPLETED")
    content = viewer.get(URL, {"status": "COMPLETED", "sort": "-created"}).content.decode()
    assert '?status=COMPLETED&amp;sort=created">Created ▼' in content
    assert '?status=COMPLETED&amp;sort=status">Status' in content


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"created_from": "yesterday"}, "created_from", "Enter a valid date/time."),
        ({"created_to": "2024-13-45T10:00"}, "created_to", "Enter a valid date/time."),
        (
            {"created_from": "2024-05-02T10:00", "created_to": "2024-05-01T10:00"},
            "created_to",
            "Must be later than “created from”.",
        ),
        ({"status": "SLEEPING"}, "status", "Select a valid choice."),
        ({"definition": "no_such_saga"}, "definition", "Select a valid choice."),
        ({"version": "3"}, "version", "Choose a definition to filter by its version."),
        ({"version": "two"}, "version", "Enter a whole number."),
        ({"sort": "price"}, "sort", "Select a valid choice."),
        ({"size": "100000"}, "size", "Select a valid choice."),
    ],
)
def test_invalid_filters_are_explained_and_list_nothing(viewer, definition, params, field, message):
    make_sagas(definition, 3)
    response = viewer.get(URL, params)
    assert response.status_code == 200
    assert response.context["page"] is None
    assert any(error.startswith(message) for error in errors(response)[field])
    assert b"The list cannot be shown until the filter is fixed" in response.content
    assert message in response.content.decode()


def test_an_unknown_version_of_a_definition_is_explained(viewer, definition):
    response = viewer.get(URL, {"definition": definition.name, "version": 9})
    assert errors(response)["version"] == [f"{definition.name} has no version 9."]


@pytest.mark.parametrize(
    ("cursor", "reason"),
    [
        ("garbage", "was altered or is not one of ours"),
        ("tampered", "was altered or is not one of ours"),
        ("other-sort", "belongs to another sort order"),
    ],
)
def test_a_bad_page_link_is_explained(viewer, definition, cursor, reason):
    make_sagas(definition, 15)
    next_cursor = viewer.get(URL, {"size": 10}).context["page"].next_cursor
    token = {
        "garbage": "not-a-cursor",
        "tampered": next_cursor[:-3] + ("aaa" if not next_cursor.endswith("aaa") else "bbb"),
        "other-sort": next_cursor,
    }[cursor]
    sort = "status" if cursor == "other-sort" else "-created"
    response = viewer.get(URL, {"size": 10, "cursor": token, "sort": sort})
    assert response.status_code == 200
    assert response.context["page"] is None
    (message,) = errors(response)["cursor"]
    assert reason in message
    assert b"Go to the first page" in response.content


def test_a_forged_cursor_is_refused_even_with_a_valid_looking_payload(viewer, definition):
    make_sagas(definition, 3)
    forged = signing.dumps({"o": "-created", "v": ["x", "y"], "b": False}, salt="another-salt")
    response = viewer.get(URL, {"cursor": forged})
    assert "was altered" in errors(response)["cursor"][0]


def test_the_list_costs_the_same_queries_for_3_or_60_sagas(
    viewer, definition, django_assert_num_queries
):
    make_sagas(definition, 3)
    params = {"status": "RUNNING", "sort": "-updated"}
    with CaptureQueriesContext(connection) as few:
        assert len(listed(viewer, **params)) == 3
    make_sagas(definition, 57)
    with django_assert_num_queries(len(few)) as many:
        assert len(listed(viewer, **params)) == 50
    sql = " ".join(query["sql"].upper() for query in many.captured_queries)
    assert "OFFSET" not in sql
    assert "COUNT(" not in sql


def test_a_later_page_costs_the_same_queries_and_uses_no_offset(viewer, definition):
    make_sagas(definition, 60)
    first = viewer.get(URL, {"size": 10}).context["page"]
    with CaptureQueriesContext(connection) as later:
        page = viewer.get(URL, {"size": 10, "cursor": first.next_cursor}).context["page"]
    assert len(page.rows) == 10
    with CaptureQueriesContext(connection) as again:
        viewer.get(URL, {"size": 10})
    assert len(later) == len(again)
    assert not any(re.search(r"\bOFFSET\b", q["sql"], re.I) for q in later.captured_queries)


def test_htmx_gets_only_the_region_and_the_url_stays_shareable(viewer, definition):
    make_sagas(definition, 2)
    response = viewer.get(URL, {"status": "RUNNING"}, headers={"HX-Request": "true"})
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="saga-region"')
    assert "dashboard-tabs" not in content
    assert 'hx-push-url="true"' in content
    assert "HX-Request" in response["Vary"]
    # A history restore asks for the whole page.
    restore = viewer.get(URL, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert b"dashboard-tabs" in restore.content


def test_without_javascript_the_form_is_a_plain_get_form(viewer):
    content = viewer.get(URL).content.decode()
    assert f'<form class="saga-filter" method="get" action="{URL}"' in content
    assert 'type="datetime-local"' in content


def test_the_keyset_cursor_is_opaque_and_signed(definition):
    (saga,) = make_sagas(definition, 1)
    token = keyset.encode(ORDERINGS["-created"], saga, backwards=False)
    assert str(saga.id) not in token
    cursor = keyset.decode(token, ORDERINGS["-created"], SagaInstance)
    assert cursor.values == (saga.created_at, saga.id)
    assert cursor.backwards is False
