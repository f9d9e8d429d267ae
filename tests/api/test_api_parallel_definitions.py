"""GET /api/v1/definitions/{name}/ shows each step's `after` (parallel branches)."""

from __future__ import annotations

import pytest
from testkit import declare

from bpm import drafts
from bpm.declarations import StepDeclaration as Step

pytestmark = pytest.mark.django_db


def test_a_definition_shows_what_each_step_waits_for(viewer):
    declare(
        "fork_api",
        Step("a", "test.remote", after=[]),
        Step("b", "test.remote", after=[]),
        Step("c", "test.remote", after=["a", "b"]),
        Step("d", "test.remote"),
    )
    response = viewer.get("/api/v1/definitions/fork_api/")
    assert response.status_code == 200
    steps = response.json()["latest"]["steps"]
    assert [(s["name"], s["after"]) for s in steps] == [
        ("a", []),
        ("b", []),
        ("c", ["a", "b"]),
        ("d", None),
    ]


def test_a_changed_order_is_part_of_a_versions_changes():
    declare("order_diff", Step("a", "test.remote"), Step("b", "test.remote"))
    changed = declare(
        "order_diff", Step("a", "test.remote", after=[]), Step("b", "test.remote", after=[])
    )
    changed.status = "DRAFT"  # compared with the published version 1, as a draft would be
    changed.save(update_fields=["status"])
    diff = drafts.changes_of(changed)
    after_changes = [
        (step.name, change.before, change.after)
        for step in diff.changed
        for change in step.fields
        if change.field == "after"
    ]
    assert after_changes == [("a", None, []), ("b", None, [])]
