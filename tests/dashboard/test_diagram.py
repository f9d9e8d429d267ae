"""The definition diagram: an inline SVG of the steps, arrows, kinds and states. No database."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bpm.dashboard.diagram import render_diagram, step_states
from bpm.models import Direction, StepDefinition, StepKind, StepRun, StepStatus

SVG = "{http://www.w3.org/2000/svg}"


def place_order_steps() -> list[StepDefinition]:
    return [
        StepDefinition(
            position=1,
            name="create_order",
            action="orders.create_order",
            compensation="orders.reject_order",
        ),
        StepDefinition(
            position=2,
            name="take_payment",
            action="payments.take_payment",
            compensation="payments.refund_payment",
            max_attempts=4,
        ),
        StepDefinition(
            position=3, name="approve_order", action="orders.approve_order", kind=StepKind.PIVOT
        ),
        StepDefinition(
            position=4,
            name="send_confirmation",
            action="notifications.send_confirmation",
            kind=StepKind.RETRIABLE,
        ),
    ]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def groups(root: ET.Element, attribute: str) -> dict[str, ET.Element]:
    return {g.get(attribute): g for g in root.iter(f"{SVG}g") if g.get(attribute)}


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def test_a_plain_definition_draws_one_box_per_step_in_order():
    root = parse(render_diagram(place_order_steps()))
    assert root.tag == f"{SVG}svg"
    steps = groups(root, "data-step")
    assert list(steps) == ["create_order", "take_payment", "approve_order", "send_confirmation"]
    assert not any(g.get("data-state") for g in steps.values())
    assert "state-" not in " ".join(g.get("class", "") for g in steps.values())


def test_forward_arrows_join_consecutive_steps():
    root = parse(render_diagram(place_order_steps()))
    forward = [
        line for line in root.iter(f"{SVG}line") if "diagram-forward" in line.get("class", "")
    ]
    assert len(forward) == 3
    starts = [float(line.get("x1")) for line in forward]
    assert starts == sorted(starts)
    assert all(float(line.get("x2")) > float(line.get("x1")) for line in forward)


def test_only_steps_with_a_compensation_get_an_undo_box_and_arrows_point_back():
    root = parse(render_diagram(place_order_steps()))
    assert list(groups(root, "data-compensation")) == ["create_order", "take_payment"]
    backward = [
        line for line in root.iter(f"{SVG}line") if "diagram-backward" in line.get("class", "")
    ]
    assert len(backward) == 1
    assert float(backward[0].get("x2")) < float(backward[0].get("x1"))
    links = [line for line in root.iter(f"{SVG}line") if "undo-link" in line.get("class", "")]
    assert len(links) == 2


def test_the_pivot_and_the_retriable_kinds_are_marked():
    steps = groups(parse(render_diagram(place_order_steps())), "data-step")
    assert "kind-pivot" in steps["approve_order"].get("class")
    assert "◆ pivot" in texts(steps["approve_order"])
    assert any("diagram-pivot-ring" in r.get("class", "") for r in steps["approve_order"])
    assert "↻ retriable" in texts(steps["send_confirmation"])
    assert "kind-compensatable" in steps["create_order"].get("class")
    assert texts(steps["create_order"]) == ["create_order", "orders.create_order"]


def test_each_step_is_coloured_by_its_state_and_says_it():
    states = {
        "create_order": "done",
        "take_payment": "compensating",
        "approve_order": "failed",
        "send_confirmation": "not_reached",
    }
    root = parse(render_diagram(place_order_steps(), states))
    steps = groups(root, "data-step")
    for name, state in states.items():
        assert f"state-{state}" in steps[name].get("class")
        assert steps[name].get("data-state") == state
    assert "not reached" in texts(steps["send_confirmation"])
    assert "state-compensating" in groups(root, "data-compensation")["take_payment"].get("class")


def test_the_tooltip_of_a_step_gives_its_handlers_attempts_and_state():
    steps = groups(
        parse(render_diagram(place_order_steps(), {"take_payment": "done"})), "data-step"
    )
    title = steps["take_payment"].find(f"{SVG}title").text
    assert "action: payments.take_payment" in title
    assert "compensation: payments.refund_payment" in title
    assert "up to 4 attempts" in title
    assert "state: done" in title


def test_every_text_is_escaped():
    evil = StepDefinition(name="<b>x</b>", action="<script>go()</script>", compensation="a&b")
    svg = render_diagram([evil])
    assert "<script>" not in svg and "<b>" not in svg
    root = parse(svg)
    assert texts(root)[:2] == ["<b>x</b>", "<script>go()</script>"]
    assert "↩ a&b" in texts(root)


def test_a_long_name_is_cut_in_the_box_but_whole_in_the_tooltip():
    long = "a_step_with_a_very_long_name_indeed"
    step = groups(parse(render_diagram([StepDefinition(name=long, action="h")])), "data-step")[long]
    assert texts(step)[0].endswith("…") and len(texts(step)[0]) < len(long)
    assert long in step.find(f"{SVG}title").text


def test_an_unknown_state_is_refused():
    with pytest.raises(ValueError, match="unknown step states \\['bogus'\\]"):
        render_diagram(place_order_steps(), {"create_order": "bogus"})


def test_no_steps_still_draws_a_valid_svg():
    assert parse(render_diagram([])).tag == f"{SVG}svg"


def run(status: str) -> StepRun:
    return StepRun(status=status)


def test_step_states_follow_the_latest_run_of_each_direction():
    runs = {
        ("create_order", Direction.FORWARD): run(StepStatus.SUCCEEDED),
        ("create_order", Direction.COMPENSATION): run(StepStatus.SUCCEEDED),
        ("take_payment", Direction.FORWARD): run(StepStatus.SUCCEEDED),
        ("take_payment", Direction.COMPENSATION): run(StepStatus.PENDING),
        ("approve_order", Direction.FORWARD): run(StepStatus.FAILED),
        ("send_confirmation", Direction.FORWARD): run(StepStatus.SKIPPED),
        ("other", Direction.FORWARD): run(StepStatus.RUNNING),
    }
    assert step_states(runs) == {
        "create_order": "compensated",
        "take_payment": "compensating",
        "approve_order": "failed",
        "send_confirmation": "skipped",
        "other": "running",
    }
