"""Saga definitions in the admin: versions are read-only; designers compose new versions from
registered handlers, validated as the engine validates a code declaration, as drafts that a second
designer approves (the four eyes themselves: tests/security/test_definition_approval.py)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from testkit import declare, with_pivot

from bpm import definitions, services
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaDefinition, SagaInstance, StepDefinition

pytestmark = pytest.mark.django_db

LIST = reverse("admin:bpm_sagadefinition_changelist")
ADD = reverse("admin:bpm_sagadefinition_add")

STEP_DEFAULTS = {
    "kind": "COMPENSATABLE",
    "compensation": "",
    "max_attempts": "3",
    "initial_backoff": "1.0",
    "backoff_multiplier": "2.0",
    "max_backoff": "60.0",
    "jitter": "0.1",
    "timeout": "30.0",
    "queue": "default",
}


def step(position: int, name: str, **fields: str) -> dict[str, str]:
    return {"position": str(position), "name": name, "action": "test.remote", **fields}


def composed(name: str, *steps: dict[str, str], schema: Any = None, **fields: str) -> dict:
    """Return the add form's POST data for a version made of these steps."""
    data = {
        "name": name,
        "title": fields.pop("title", f"{name} title"),
        "description": "",
        "input_schema": "" if schema is None else json.dumps(schema),
        "change_reason": fields.pop("change_reason", "a test of composing"),
        "steps-TOTAL_FORMS": str(len(steps) + 1),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        **fields,
    }
    # The blank row the admin offers, left empty: it is ignored.
    blank = {"position": "", "name": "", "action": ""}
    for index, row in enumerate((*steps, blank)):
        fields = {**STEP_DEFAULTS, **row}
        data.update({f"steps-{index}-{key}": value for key, value in fields.items()})
    return data


def problems(response) -> str:
    """Return every error on the page's form and step rows, as one string."""
    assert response.status_code == 200, response
    errors = [e for field in response.context["adminform"].form.errors.values() for e in field]
    for inline in response.context["inline_admin_formsets"]:
        errors += inline.formset.non_form_errors()
        errors += [e for row in inline.formset.errors for field in row.values() for e in field]
    return " ".join(errors)


def approve(reviewer, definition: SagaDefinition) -> None:
    """Have the second designer approve a draft through the admin."""
    url = reverse("admin:bpm_sagadefinition_approve", args=[definition.pk])
    response = reviewer.post(url, {"text": "checked"})
    assert response.status_code == 302
    definition.refresh_from_db()
    assert definition.status == "PUBLISHED"


def test_a_designer_composes_a_first_version_of_a_new_saga_as_a_draft(designer):
    data = composed(
        "refund_order",
        step(1, "refund", compensation="test.local"),
        step(2, "approve", kind="PIVOT"),
        step(3, "notify", kind="RETRIABLE", max_attempts="10", queue="default"),
        schema={"type": "object", "required": ["order_id"]},
    )
    response = designer.post(ADD, data)
    definition = SagaDefinition.objects.get(name="refund_order")
    assert response.status_code == 302
    assert response.url == reverse("admin:bpm_sagadefinition_change", args=[definition.pk])
    assert (definition.version, definition.fingerprint, definition.status) == (1, "", "DRAFT")
    assert (definition.composed_by.username, definition.change_reason) == (
        "dora",
        "a test of composing",
    )
    assert definition.input_schema == {"type": "object", "required": ["order_id"]}
    steps = list(definition.steps.order_by("position"))
    assert [(s.position, s.name, s.kind, s.compensation) for s in steps] == [
        (1, "refund", "COMPENSATABLE", "test.local"),
        (2, "approve", "PIVOT", ""),
        (3, "notify", "RETRIABLE", ""),
    ]
    assert steps[2].max_attempts == 10
    assert LogEntry.objects.get().object_id == str(definition.pk)


def test_a_composed_version_is_the_one_new_sagas_start_with_once_approved(
    designer, reviewer, the_world
):
    with_pivot()
    designer.post(ADD, composed("with_pivot", step(1, "only")))
    approve(reviewer, SagaDefinition.objects.get(name="with_pivot", version=2))
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    assert (saga.definition.version, [s.name for s in saga.definition.steps.all()]) == (2, ["only"])


def test_steps_are_ordered_by_their_positions_and_renumbered(designer):
    designer.post(ADD, composed("ordered", step(30, "last"), step(5, "first"), step(10, "middle")))
    steps = StepDefinition.objects.filter(definition__name="ordered").order_by("position")
    assert [(s.position, s.name) for s in steps] == [(1, "first"), (2, "middle"), (3, "last")]


def test_an_existing_name_gets_its_next_version(designer):
    declare("evolving", Step("a", "test.remote"))
    response = designer.post(ADD, composed("evolving", step(1, "a"), step(2, "b")))
    latest = SagaDefinition.objects.filter(name="evolving").order_by("-version").first()
    assert latest.version == 2
    assert response.url == reverse("admin:bpm_sagadefinition_change", args=[latest.pk])
    assert list(latest.steps.values_list("name", flat=True)) == ["a", "b"]


def test_the_same_steps_as_the_published_version_publish_nothing(designer):
    declare("evolving", Step("a", "test.remote"))  # with the schema {"type": "object"}
    response = designer.post(ADD, composed("evolving", step(1, "a"), schema={"type": "object"}))
    assert "these steps and input schema are those of evolving v1" in problems(response)
    assert SagaDefinition.objects.filter(name="evolving").count() == 1


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ((step(1, "a", action="no.such.handler"),), "no handler registered as 'no.such.handler'"),
        ((step(1, "a", compensation="nope"),), "no handler registered as 'nope'"),
        ((step(1, "a"), step(2, "a")), "step names must be unique: a"),
        (
            (step(1, "a", kind="PIVOT"), step(2, "b")),
            "step 'b': steps after the pivot must be retriable",
        ),
        (
            (step(1, "a", kind="PIVOT"), step(2, "b", kind="PIVOT")),
            "at most one pivot step is allowed, found a, b",
        ),
        (
            (step(1, "a", kind="RETRIABLE", compensation="test.remote"),),
            "a retriable step carries no compensation",
        ),
        ((step(1, "a", max_attempts="0"),), "max attempts must be at least 1"),
        ((step(1, "a", jitter="2"),), "jitter must be between 0 and 1"),
        ((step(1, "a", queue="nowhere"),), "queue 'nowhere' is not configured"),
        ((step(1, "not a slug"),), "Enter a valid “slug”"),
        ((), "a saga needs at least one step"),
    ],
)
def test_an_invalid_version_is_refused_with_what_is_wrong_and_nothing_is_made(
    designer, steps, problem
):
    response = designer.post(ADD, composed("broken", *steps))
    assert problem in problems(response)
    assert html.escape(problem) in response.content.decode()
    assert not SagaDefinition.objects.filter(name="broken").exists()
    assert not StepDefinition.objects.filter(definition__name="broken").exists()


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "no-such-type"}, "not a valid JSON Schema at type"),
        ({"required": "order_id"}, "not a valid JSON Schema at required"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_an_invalid_input_schema_is_refused_and_nothing_is_made(designer, schema, problem):
    response = designer.post(ADD, composed("broken", step(1, "a"), schema=schema))
    assert problem in problems(response)
    assert not SagaDefinition.objects.filter(name="broken").exists()


def test_a_schema_that_is_not_json_is_refused(designer):
    data = {**composed("broken", step(1, "a")), "input_schema": "{not json"}
    assert "Enter a valid JSON" in problems(designer.post(ADD, data))
    assert not SagaDefinition.objects.filter(name="broken").exists()


def test_a_published_version_is_shown_read_only_with_its_steps(designer, the_world):
    definition = with_pivot()
    response = designer.get(reverse("admin:bpm_sagadefinition_change", args=[definition.pk]))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    assert not response.context["adminform"].form.fields
    steps, audit = response.context["inline_admin_formsets"]
    assert [event.type for event in audit.formset.queryset] == ["DEPLOYED"]
    assert [s.name for s in steps.formset.queryset] == ["a", "pivot", "after"]
    assert not steps.has_add_permission


def test_a_change_posted_to_a_published_version_is_refused(admin_client, the_world):
    definition = with_pivot()
    url = reverse("admin:bpm_sagadefinition_change", args=[definition.pk])
    response = admin_client.post(url, {**composed("with_pivot", step(1, "x")), "title": "new"})
    assert response.status_code == 403
    definition.refresh_from_db()
    assert definition.title == "with_pivot"
    assert list(definition.steps.values_list("name", flat=True)) == ["a", "pivot", "after"]


def test_a_version_with_instances_cannot_be_deleted(admin_client, the_world):
    definition = with_pivot()
    services.saga_start(definition="with_pivot", input={}, actor="test")
    url = reverse("admin:bpm_sagadefinition_delete", args=[definition.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert SagaDefinition.objects.filter(pk=definition.pk).exists()


def test_a_viewer_may_look_but_not_compose(viewer, the_world):
    definition = with_pivot()
    assert viewer.get(LIST).status_code == 200
    page = viewer.get(reverse("admin:bpm_sagadefinition_change", args=[definition.pk]))
    assert "Duplicate as new version" not in page.content.decode()
    assert viewer.get(ADD).status_code == 403
    assert viewer.post(ADD, composed("sneaky", step(1, "a"))).status_code == 403
    assert not SagaDefinition.objects.filter(name="sneaky").exists()


def test_duplicating_a_version_opens_the_form_with_its_steps(designer, the_world):
    definition = with_pivot()
    page = designer.get(reverse("admin:bpm_sagadefinition_change", args=[definition.pk]))
    duplicate = f"{ADD}?from={definition.pk}"
    assert f'href="{duplicate}"' in page.content.decode()
    response = designer.get(duplicate)
    form = response.context["adminform"].form
    assert (form["name"].value(), form["title"].value()) == ("with_pivot", "with_pivot")
    [steps] = response.context["inline_admin_formsets"]
    rows = [f.initial for f in steps.formset.forms if f.initial.get("name")]
    assert [(r["position"], r["name"], r["kind"]) for r in rows] == [
        (1, "a", "COMPENSATABLE"),
        (2, "pivot", "PIVOT"),
        (3, "after", "RETRIABLE"),
    ]


def test_the_list_counts_each_versions_steps_and_instances(viewer, the_world):
    definition = with_pivot()
    for _ in range(2):
        services.saga_start(definition="with_pivot", input={}, actor="test")
    response = viewer.get(LIST, {"name": "with_pivot"})
    [row] = response.context["cl"].result_list
    assert (row, row.instance_total, row.step_total) == (definition, 2, 3)
    assert "code declaration" in response.content.decode()


def test_the_list_costs_the_same_queries_for_3_or_30_versions(viewer):
    def versions(count: int) -> None:
        for n in range(count):
            declare(f"saga{SagaDefinition.objects.count()}-{n}", Step("a", "test.remote"))

    viewer.get(LIST)
    versions(3)
    with CaptureQueriesContext(connection) as few:
        viewer.get(LIST)
    versions(27)
    definition = SagaDefinition.objects.first()
    SagaInstance.objects.create(definition=definition, definition_name=definition.name)
    with CaptureQueriesContext(connection) as many:
        viewer.get(LIST)
    assert len(many) == len(few)


def test_a_composed_version_stays_the_latest_until_the_code_declaration_changes(designer, reviewer):
    declare("evolving", Step("a", "test.remote"))
    designer.post(ADD, composed("evolving", step(1, "a"), step(2, "b")))
    approve(reviewer, SagaDefinition.objects.get(name="evolving", version=2))
    assert declare("evolving", Step("a", "test.remote")).version == 1  # the code is unchanged
    assert definitions.resolve("evolving").version == 2
    changed = declare("evolving", Step("a", "test.remote"), Step("c", "test.remote"))
    assert changed.version == definitions.resolve("evolving").version == 3


def test_the_compose_form_starts_blank_as_a_browser_would_post_it(designer):
    form = designer.get(ADD).content.decode()
    assert '<option value="" selected>— choose a handler —</option>' in form
    assert re.search(r"id_input_schema\"[^>]*>\s*{}</textarea>", form)
