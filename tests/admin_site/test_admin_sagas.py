"""The saga instances admin: a searchable, filterable list and a read-only page per saga."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from testkit import with_pivot

from bpm.admin.display import moment
from bpm.models import SagaInstance

pytestmark = pytest.mark.django_db(transaction=True)

LIST = reverse("admin:bpm_sagainstance_changelist")


def change_url(saga: SagaInstance) -> str:
    return reverse("admin:bpm_sagainstance_change", args=[saga.pk])


def listed(client, **query) -> list[SagaInstance]:
    response = client.get(LIST, query)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def many_sagas(count: int) -> None:
    definition = with_pivot()
    SagaInstance.objects.bulk_create(
        SagaInstance(definition=definition, definition_name=definition.name, business_key=f"k{n}")
        for n in range(count)
    )


def test_the_list_shows_each_saga_with_its_definition_version_status_and_reason(
    viewer, stuck_after_pivot
):
    response = viewer.get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert str(stuck_after_pivot.id)[:8] + "…" in page
    assert "with_pivot v1" in page
    assert "retries exhausted" in page
    assert "order-17" in page


@pytest.mark.parametrize(
    ("query", "finds_the_stuck_one", "finds_the_completed_one"),
    [
        ({"status__exact": "STUCK"}, True, False),
        ({"status__exact": "COMPLETED"}, False, True),
        ({"stuck_reason__exact": "RETRIES_EXHAUSTED"}, True, False),
        ({"definition_name": "with_pivot"}, True, True),
        ({"definition_name": "three_retriable_remote"}, False, False),
        ({"created_at__gte": "2000-01-01 00:00:00+00:00"}, True, True),
    ],
)
def test_the_list_filters_by_status_reason_definition_and_date(
    viewer, stuck_after_pivot, completed_saga, query, finds_the_stuck_one, finds_the_completed_one
):
    found = listed(viewer, **query)
    assert (stuck_after_pivot in found, completed_saga in found) == (
        finds_the_stuck_one,
        finds_the_completed_one,
    )


def test_the_definition_filter_offers_every_definition_name(viewer, stuck_after_pivot):
    response = viewer.get(LIST)
    [definition_filter] = [
        spec for spec in response.context["cl"].filter_specs if spec.title == "definition"
    ]
    assert ("with_pivot", "with_pivot") in definition_filter.lookup_choices


@pytest.mark.parametrize(
    "term",
    [
        lambda saga: str(saga.id),
        lambda saga: str(saga.id).upper(),
        lambda saga: str(saga.id)[:8],
        lambda saga: str(saga.id)[:8] + "…",
        lambda saga: str(saga.id)[:13],
        lambda saga: saga.business_key,
        lambda saga: saga.idempotency_key,
    ],
    ids=["id", "upper-case id", "short id", "quoted short id", "longer prefix", "key", "idem"],
)
def test_a_saga_is_found_by_its_id_its_short_id_or_its_keys(
    viewer, the_world, drained, stuck_after_pivot, completed_saga, term
):
    SagaInstance.objects.filter(pk=stuck_after_pivot.pk).update(idempotency_key="idem-1")
    stuck_after_pivot.refresh_from_db()
    assert listed(viewer, q=term(stuck_after_pivot)) == [stuck_after_pivot]


@pytest.mark.parametrize("term", ["no-such-key", "zz", "1234-5678-not-an-id"])
def test_a_search_that_matches_nothing_lists_nothing(viewer, stuck_after_pivot, term):
    assert listed(viewer, q=term) == []


def test_a_filtered_list_does_not_count_the_whole_table(viewer, stuck_after_pivot):
    with CaptureQueriesContext(connection) as queries:
        response = viewer.get(LIST, {"status__exact": "STUCK"})
    assert response.context["cl"].show_full_result_count is False
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "STUCK" in counts[0]


def test_the_list_costs_the_same_queries_for_3_or_30_sagas(viewer):
    many_sagas(3)
    with CaptureQueriesContext(connection) as few:
        assert len(listed(viewer)) == 3
    many_sagas(27)
    with CaptureQueriesContext(connection) as many:
        assert len(listed(viewer)) == 30
    assert len(many) == len(few)


def test_a_saga_page_shows_every_field_read_only_with_its_runs_and_timeline(
    viewer, stuck_after_pivot
):
    response = viewer.get(change_url(stuck_after_pivot))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    assert not response.context["adminform"].form.fields
    inlines = {
        inline.formset.model._meta.model_name: inline
        for inline in response.context["inline_admin_formsets"]
    }
    assert set(inlines) == {"steprun", "sagaevent"}
    runs = list(inlines["steprun"].formset.queryset)
    assert [run.id for run in runs] == sorted(run.id for run in runs)
    assert len(inlines["sagaevent"].formset.queryset) == stuck_after_pivot.events.count()
    page = response.content.decode()
    assert "<details><summary>after is unreachable</summary><pre>Traceback" in page
    assert "ConnectionError: after is unreachable" in page
    assert moment(stuck_after_pivot.events.last().at) in page  # to the millisecond


def test_a_saga_page_links_to_the_saga_in_the_dashboard(viewer, stuck_after_pivot):
    response = viewer.get(change_url(stuck_after_pivot))
    dashboard = reverse("dashboard:saga", args=[stuck_after_pivot.id])
    assert f'href="{dashboard}"' in response.content.decode()
    assert "Open in the dashboard" in response.content.decode()


def test_the_saga_page_costs_the_same_queries_however_long_the_timeline(viewer, the_world, drained):
    with_pivot()
    from bpm import services

    short = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    the_world.will("after", "fault", "fault")
    long = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    assert long.events.count() > short.events.count() + 3
    viewer.get(change_url(short))  # the first request fills per-process caches (content types)
    with CaptureQueriesContext(connection) as few:
        viewer.get(change_url(short))
    with CaptureQueriesContext(connection) as more:
        viewer.get(change_url(long))
    assert len(more) == len(few), [q["sql"] for q in more]


def test_nobody_adds_changes_or_deletes_a_saga_here(stuck_after_pivot, admin_client):
    assert admin_client.get(reverse("admin:bpm_sagainstance_add")).status_code == 403
    delete = reverse("admin:bpm_sagainstance_delete", args=[stuck_after_pivot.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    response = admin_client.post(change_url(stuck_after_pivot), {"business_key": "changed"})
    assert response.status_code == 403
    assert SagaInstance.objects.get(pk=stuck_after_pivot.pk).business_key == "order-17"
