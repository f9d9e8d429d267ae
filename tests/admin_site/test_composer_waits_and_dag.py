"""The admin's composer edits a step's wait, keeps waits, orders and HTTP calls when a version is
duplicated, and draws the steps being composed (the diagram endpoint the compose page POSTs to)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from test_admin_definitions import ADD, composed, problems, step
from testkit import FAST, declare

from bpm.declarations import RETRIABLE
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaDefinition

pytestmark = pytest.mark.django_db

DIAGRAM = reverse("admin:bpm_sagadefinition_diagram")
SIGNAL = {"signal": "goods.arrived", "timeout": 3600}
TASK = {
    "task": {
        "group": "designers",
        "title": "Check the order",
        "form": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
    },
    "timeout": 86400,
}
CALL = {"method": "POST", "url": "https://payments.example/pay/{input.id}"}


@pytest.fixture(autouse=True)
def outbound(settings):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["payments.example"]
    settings.BPM_HTTP_SECRETS = {}


def test_a_signal_wait_step_is_composed_without_an_action(designer):
    data = composed(
        "wait_for_goods",
        step(1, "order", compensation="test.remote"),
        step(2, "arrival", action="", wait=json.dumps(SIGNAL), kind="RETRIABLE"),
    )
    response = designer.post(ADD, data)
    assert response.status_code == 302, problems(response)
    stored = SagaDefinition.objects.get(name="wait_for_goods").steps.get(name="arrival")
    assert (stored.wait, stored.action) == (SIGNAL, "")


def test_a_task_token_wait_keeps_its_action(designer):
    wait = {"task_token": {}, "timeout": 600}
    data = composed("hand_off", step(1, "hand", wait=json.dumps(wait)))
    response = designer.post(ADD, data)
    assert response.status_code == 302, problems(response)
    stored = SagaDefinition.objects.get(name="hand_off").steps.get()
    assert (stored.wait, stored.action) == (wait, "test.remote")


@pytest.mark.parametrize(
    ("wait", "message"),
    [
        ({"signal": "Bad Name!", "timeout": 60}, "signal"),
        ({"signal": "ok"}, "wait.timeout is required"),
        ({"nap": 1, "timeout": 60}, "unknown key 'nap'"),
        ([1, 2], "wait must be a JSON object"),
    ],
)
def test_a_bad_wait_is_refused_with_the_shared_validators_reason(designer, wait, message):
    data = composed("bad_wait", step(1, "w", action="", wait=json.dumps(wait)))
    assert message in problems(designer.post(ADD, data))
    assert not SagaDefinition.objects.filter(name="bad_wait").exists()


def test_a_signal_wait_with_an_action_is_refused(designer):
    data = composed("both", step(1, "w", wait=json.dumps(SIGNAL)))
    assert "a wait step has no action" in problems(designer.post(ADD, data))


def browser_post(response) -> dict[str, str]:
    """Return what a browser posts back from the compose page, unchanged."""
    data: dict[str, str] = {}
    form = response.context["adminform"].form
    [inline] = response.context["inline_admin_formsets"]
    forms: list[Any] = [form, *inline.formset.forms, inline.formset.management_form]
    for each in forms:
        for name in each.fields:
            bound = each[name]
            value = bound.value()
            if value is None or value is False:
                continue
            data[bound.html_name] = "on" if value is True else str(value)
    return data


def test_duplicating_a_version_keeps_its_waits_orders_and_http_calls(designer):
    source = declare(
        "fulfil",
        Step("pay", f"http POST {CALL['url']}", action_http=CALL, retry=FAST),
        Step("pack", "test.remote", "test.remote", after=(), retry=FAST),
        Step("check", "", kind=RETRIABLE, wait=TASK, after=("pay", "pack"), retry=FAST),
        Step("arrive", "", kind=RETRIABLE, wait=SIGNAL, retry=FAST),
    )
    page = designer.get(f"{ADD}?from={source.pk}")
    data = browser_post(page)
    data["change_reason"] = "one more attempt to pack"
    pack = next(k for k, v in data.items() if v == "pack").removesuffix("name")
    data[f"{pack}max_attempts"] = "4"
    response = designer.post(ADD, data)
    assert response.status_code == 302, problems(response)
    copy = SagaDefinition.objects.get(name="fulfil", version=2)
    steps = {s.name: s for s in copy.steps.all()}
    assert steps["pay"].action_http == CALL
    assert steps["pay"].action == source.steps.get(name="pay").action
    assert steps["pack"].after == []
    assert steps["check"].after == ["pay", "pack"]
    assert (steps["check"].wait, steps["arrive"].wait) == (TASK, SIGNAL)
    assert steps["arrive"].after is None
    assert steps["pack"].max_attempts == 4


def test_the_diagram_draws_the_steps_as_composed(designer):
    data = composed(
        "drawn",
        step(1, "a", compensation="test.remote"),
        step(2, "b", compensation="test.remote", after="-"),
        step(3, "c", after="a, b", kind="RETRIABLE"),
        step(4, "arrival", action="", wait=json.dumps(SIGNAL), kind="RETRIABLE"),
    )
    response = designer.post(DIAGRAM, data)
    assert response.status_code == 200
    svg = response.content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="saga-diagram"' in svg
    for before, after in (("a", "c"), ("b", "c"), ("c", "arrival")):
        assert f'data-from="{before}" data-to="{after}"' in svg
    assert 'data-from="a" data-to="b"' not in svg
    assert "waits for a signal" in svg
    assert not SagaDefinition.objects.filter(name="drawn").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [step(1, "a", after="b"), step(2, "b", after="a")],
            "steps wait for each other in a cycle",
        ),
        ([step(1, "a", after="ghost")], "runs after &#x27;ghost&#x27;, which is not a step"),
        ([step(1, "a", action="")], "row 1, action: choose a handler or write an HTTP call"),
        ([step(1, "a", wait='{"signal": 1}')], "row 1, wait:"),
        ([], "a saga needs at least one step"),
    ],
)
def test_invalid_steps_are_described_instead_of_drawn(designer, rows, message):
    response = designer.post(DIAGRAM, composed("drawn", *rows))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<svg" not in body
    assert "cannot be drawn yet" in body
    assert message in body


def test_rows_not_sent_whole_are_described(designer):
    response = designer.post(DIAGRAM, {"name": "x"})
    assert "the step rows were not sent whole" in response.content.decode()


def test_the_compose_page_offers_the_diagram(designer):
    page = designer.get(ADD).content.decode()
    assert f'data-url="{DIAGRAM}"' in page
    assert "bpm/composer.js" in page
    assert 'name="steps-0-wait"' in page


def test_only_a_designer_may_draw(client, viewer, operator):
    data = composed("drawn", step(1, "a"))
    anonymous = client.post(DIAGRAM, data)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    for refused in (viewer, operator):
        assert refused.post(DIAGRAM, data).status_code == 403


def test_the_diagram_is_posted_not_fetched(designer):
    assert designer.get(DIAGRAM).status_code == 405
