"""The definitions pages: versions latest first, diagram, steps and policies, schema, counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from saga_rows import make_sagas
from testkit import FAST, with_pivot

from bpm import definitions
from bpm.declarations import PIVOT, RETRIABLE, RetryPolicy, SagaDeclaration
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaDefinition, SagaStatus

LIST_URL = reverse("dashboard:definitions")
SCHEMA = {
    "type": "object",
    "required": ["order_id"],
    "properties": {"order_id": {"type": "integer", "description": "numéro de commande"}},
}
SLOW = RetryPolicy(max_attempts=7, initial_backoff=2.5, multiplier=3, max_backoff=120, jitter=0.2)

pytestmark = pytest.mark.django_db


def shipping(*steps: Step):
    """Sync a `shipping` saga with these steps (a new version when they change)."""
    definition, _ = definitions.sync_declaration(
        SagaDeclaration(
            name="shipping",
            title="Ship a parcel",
            description="Books a courier, then labels the parcel.",
            input_schema=SCHEMA,
            steps=steps,
        )
    )
    return definition


@pytest.fixture
def two_versions():
    first = shipping(Step("book", "test.remote", "test.remote", retry=FAST))
    second = shipping(
        Step("book", "test.remote", "test.remote", retry=SLOW, timeout=12.5),
        Step("label", "test.local", kind=PIVOT, retry=FAST),
        Step("notify", "test.remote", kind=RETRIABLE, retry=FAST, timeout=5),
    )
    return first, second


def detail_url(name="shipping"):
    return reverse("dashboard:definition", args=[name])


def test_a_viewer_sees_every_definition_with_its_versions_latest_first(viewer, two_versions):
    pivot = with_pivot()
    response = viewer.get(LIST_URL)
    assert response.status_code == 200
    summaries = {summary.name: summary for summary in response.context["definitions"]}
    assert list(summaries) == sorted(summaries)
    assert {"shipping", "with_pivot"} <= set(summaries)
    assert [v.version for v in summaries["shipping"].versions] == [2, 1]
    assert summaries["with_pivot"].latest == pivot
    content = response.content.decode()
    section = content[content.index('data-definition="shipping"') :].split("</section>")[0]
    assert section.index('data-version="2"') < section.index('data-version="1"')
    assert f'href="{detail_url()}?version=1"' in content
    diagrams = content.count('<svg xmlns="http://www.w3.org/2000/svg" class="saga-diagram"')
    assert diagrams == len(summaries)
    assert 'data-step="notify"' in content  # the latest version's diagram


def test_the_list_counts_each_definitions_sagas_by_status(viewer, two_versions):
    first, second = two_versions
    make_sagas(first, 2, status=SagaStatus.COMPLETED)
    make_sagas(second, 3, status=SagaStatus.STUCK, stuck_reason="TIMED_OUT")
    make_sagas(second, 1, status=SagaStatus.COMPLETED)
    summaries = viewer.get(LIST_URL).context["definitions"]
    (summary,) = [summary for summary in summaries if summary.name == "shipping"]
    assert {s: n for s, n in summary.counts.counts if n} == {"COMPLETED": 3, "STUCK": 3}
    assert summary.counts.total == 6


def test_an_empty_list_says_how_definitions_are_made(viewer):
    SagaDefinition.objects.all().delete()  # those synced from code after migrate
    response = viewer.get(LIST_URL)
    assert b"No saga definition exists yet" in response.content


def test_the_detail_shows_the_latest_version_by_default(viewer, two_versions):
    response = viewer.get(detail_url())
    assert response.status_code == 200
    assert response.context["definition"] == two_versions[1]
    assert [step.name for step in response.context["steps"]] == ["book", "label", "notify"]
    assert b'<strong aria-current="page">v2</strong>' in response.content


def test_a_version_can_be_picked(viewer, two_versions):
    response = viewer.get(detail_url(), {"version": 1})
    assert response.context["definition"] == two_versions[0]
    assert [step.name for step in response.context["steps"]] == ["book"]
    assert b'<a href="?version=2">v2</a>' in response.content


def test_the_steps_show_kind_handlers_and_policies(viewer, two_versions):
    content = viewer.get(detail_url()).content.decode()
    book = content[content.index('<tr data-step="book">') :].split("</tr>")[0]
    for text in (
        "COMPENSATABLE",
        "<code>test.remote</code>",
        "<td>7</td>",
        "2.5 s \u00d7 3, at most 120 s, jitter 0.2",
        "12.5 s",
        "default",
    ):
        assert text in book, text
    label = content[content.index('<tr data-step="label">') :].split("</tr>")[0]
    assert "PIVOT" in label and "<code>test.local</code>" in label and "none" in label
    assert 'data-step="label" data-kind="PIVOT"' in content  # in the diagram


def test_the_input_schema_is_pretty_printed(viewer, two_versions):
    content = viewer.get(detail_url()).content.decode()
    assert '<pre class="definition-schema">{\n  &quot;type&quot;: &quot;object&quot;,' in content
    assert "numéro de commande" in content  # kept readable, not as JSON escapes


def test_the_detail_counts_sagas_by_version_and_status(viewer, two_versions):
    first, second = two_versions
    make_sagas(first, 2, status=SagaStatus.COMPENSATED)
    make_sagas(second, 4, status=SagaStatus.RUNNING)
    response = viewer.get(detail_url())
    rows = {row.key: {s: n for s, n in row.counts if n} for row in response.context["rows"]}
    assert rows == {2: {"RUNNING": 4}, 1: {"COMPENSATED": 2}}
    assert response.context["totals"].total == 6
    link = f"{reverse('dashboard:sagas')}?definition=shipping&amp;version=1&amp;status=COMPENSATED"
    assert link in response.content.decode()


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nothing_here", {}, "There is no saga definition named “nothing_here”."),
        ("shipping", {"version": 3}, "has no version “3” (it has 1, 2)"),
        ("shipping", {"version": "latest"}, "has no version “latest”"),
    ],
)
def test_an_unknown_name_or_version_is_not_found(viewer, two_versions, name, params, message):
    response = viewer.get(detail_url(name), params)
    assert response.status_code == 404
    assert message in str(response.context["exception"])


@pytest.mark.parametrize("url", [LIST_URL, detail_url()])
def test_the_pages_cost_the_same_queries_for_3_or_60_sagas(
    viewer, two_versions, url, django_assert_num_queries
):
    first, second = two_versions
    make_sagas(second, 3)
    with CaptureQueriesContext(connection) as few:
        assert viewer.get(url).status_code == 200
    make_sagas(first, 30, status=SagaStatus.COMPLETED)
    make_sagas(second, 27, status=SagaStatus.STUCK, stuck_reason="TIMED_OUT")
    with django_assert_num_queries(len(few)):
        assert viewer.get(url).status_code == 200
