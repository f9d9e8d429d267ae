"""A step's `wait` is validated strictly, each problem naming the step."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from waitkit import FORM

from bpm import waits
from bpm.declarations import StepDeclaration as Step
from bpm.declarations import validate_steps
from bpm.errors import DefinitionInvalid

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reviewers():
    Group.objects.get_or_create(name="reviewers")


def problems_of(step: Step) -> str:
    with pytest.raises(DefinitionInvalid) as refused:
        validate_steps([step])
    return str(refused.value)


def task(**task_fields) -> dict:
    fields = {"group": "reviewers", "title": "Look", "form": FORM, **task_fields}
    return {"task": fields, "timeout": 60}


def test_the_three_waits_validate():
    validate_steps(
        [
            Step("s", "", wait={"signal": "go.now-1", "timeout": 5}),
            Step("t", "test.remote", wait={"task_token": {}, "timeout": 5.0}),
            Step("h", "", "test.remote", wait=task()),
        ]
    )


@pytest.mark.parametrize(
    ("wait", "message"),
    [
        ([], "wait must be a JSON object, not list"),
        ({"timeout": 5}, "exactly one of signal, task_token, task, found none"),
        ({"signal": "a", "task": {}, "timeout": 5}, "found signal, task"),
        ({"signal": "a", "timeout": 5, "retries": 2}, "unknown key 'retries'"),
        ({"signal": "a"}, "wait.timeout is required"),
        ({"signal": "a", "timeout": True}, "must be a number of seconds, not bool"),
        ({"signal": "a", "timeout": "5"}, "must be a number of seconds, not str"),
        ({"signal": "a", "timeout": 0}, "more than 0"),
        ({"signal": "a", "timeout": 31 * 24 * 3600}, "at most 2.592e+06 seconds"),
        ({"signal": "Go!", "timeout": 5}, "wait.signal must be a name"),
        ({"signal": 5, "timeout": 5}, "wait.signal must be a name"),
        ({"signal": "a", "timeout": 5, "pad": "x" * 20_000}, "more than 16384"),
    ],
)
def test_a_malformed_wait_is_refused_naming_the_step(wait, message):
    refused = problems_of(Step("w", "", wait=wait))
    assert "step 'w'" in refused and message in refused


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"group": "nobody"}, "no group named 'nobody'"),
        ({"group": ""}, "wait.task.group must be a group's name"),
        ({"title": ""}, "wait.task.title must be 1 to 200 characters"),
        ({"title": "x" * 201}, "wait.task.title must be 1 to 200 characters"),
        ({"form": {"type": "string"}}, 'a form must be a schema of "type": "object"'),
        (
            {"form": {"type": "object", "properties": {"a": {"pattern": "(?=a)b"}}}},
            "wait.task.form",
        ),
        ({"form": {"$ref": "https://example.com/schema"}}, "wait.task.form"),
        ({"assignee": "rita"}, "unknown key 'assignee'"),
    ],
)
def test_a_malformed_task_is_refused(fields, message):
    refused = problems_of(Step("review", "", wait=task(**fields)))
    assert "step 'review'" in refused and message in refused


def test_a_task_needs_group_title_and_form():
    refused = problems_of(Step("review", "", wait={"task": {}, "timeout": 5}))
    for key in ("form", "group", "title"):
        assert f"wait.task.{key} is required" in refused


def test_signal_and_task_waits_have_no_action_and_a_token_wait_has_one():
    assert "a wait step has no action" in problems_of(
        Step("s", "test.remote", wait={"signal": "a", "timeout": 5})
    )
    assert "no handler registered as ''" in problems_of(
        Step("t", "", wait={"task_token": {}, "timeout": 5})
    )
    assert "takes no options" in problems_of(
        Step("t", "test.remote", wait={"task_token": {"x": 1}, "timeout": 5})
    )


def test_a_token_is_stable_per_run_unguessable_and_kept_only_hashed():
    token = waits.token_for(7, "saga")
    assert token == waits.token_for(7, "saga") != waits.token_for(8, "saga")
    assert token.startswith("tt_") and len(token) == 46
    assert waits.token_hash(token) != token and len(waits.token_hash(token)) == 64
