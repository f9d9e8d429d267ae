"""The diagram of parallel branches: layers left to right, one arrow per `after`. No database."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bpm.dashboard.diagram import BOX_WIDTH, GAP, MARGIN, render_diagram
from bpm.models import StepDefinition

SVG = "{http://www.w3.org/2000/svg}"


def diamond() -> list[StepDefinition]:
    return [
        StepDefinition(position=1, name="a", action="t.a", compensation="t.undo_a", after=[]),
        StepDefinition(position=2, name="b", action="t.b", compensation="t.undo_b", after=["a"]),
        StepDefinition(position=3, name="c", action="t.c", compensation="t.undo_c", after=["a"]),
        StepDefinition(position=4, name="d", action="t.d", after=["b", "c"]),
    ]


def box_of(svg: ET.Element, name: str) -> tuple[float, float]:
    group = next(g for g in svg.iter(f"{SVG}g") if g.get("data-step") == name)
    rect = group.find(f"{SVG}rect")
    assert rect is not None
    return float(rect.get("x", 0)), float(rect.get("y", 0))


def arrows(svg: ET.Element, kind: str) -> set[tuple[str | None, str | None]]:
    return {
        (line.get("data-from"), line.get("data-to"))
        for line in svg.iter(f"{SVG}line")
        if kind in (line.get("class") or "")
    }


def test_parallel_steps_share_a_column_one_below_the_other():
    svg = ET.fromstring(str(render_diagram(diamond())))
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = (box_of(svg, n) for n in "abcd")
    assert ax == MARGIN and bx == cx == MARGIN + BOX_WIDTH + GAP and dx == bx + BOX_WIDTH + GAP
    assert ay == by == dy and cy > by
    assert float(svg.get("width", 0)) == 2 * MARGIN + 3 * (BOX_WIDTH + GAP) - GAP
    assert "Saga steps: a → b, c → d" in str(render_diagram(diamond()))


def test_every_after_is_an_arrow_and_compensations_point_back_in_reverse_order():
    svg = ET.fromstring(str(render_diagram(diamond())))
    assert arrows(svg, "diagram-forward") == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}
    assert arrows(svg, "diagram-backward") == {("b", "a"), ("c", "a")}


def test_an_order_with_a_cycle_is_drawn_as_a_line_rather_than_refused():
    steps = [
        StepDefinition(position=1, name="a", action="t.a", after=["b"]),
        StepDefinition(position=2, name="b", action="t.b", after=["a"]),
    ]
    svg = ET.fromstring(str(render_diagram(steps)))
    assert arrows(svg, "diagram-forward") == {("a", "b")}
