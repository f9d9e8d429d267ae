"""The timeline of parallel branches: steps that ran at the same time overlap on their own lanes."""

from __future__ import annotations

from test_timeline import Story

from bpm.models import EventType


def test_two_steps_that_ran_at_once_are_overlapping_bars_on_their_own_lanes():
    story = Story()
    story.event(0, EventType.SAGA_STARTED, actor="test")
    create = story.run("create_order")
    story.attempt(create, 1, 1, 2)
    pay, approve = story.run("take_payment"), story.run("approve_order")
    story.attempt(pay, 1, 3, 9)
    story.attempt(approve, 1, 4, 8, actor="worker:w2")
    root = story.render()
    bars = {
        bar.get("data-lane"): bar
        for bar in root.iter("{http://www.w3.org/2000/svg}rect")
        if "timeline-bar" in (bar.get("class") or "")
    }
    paid, approved = bars["take_payment:FORWARD"], bars["approve_order:FORWARD"]
    start_pay, start_approve = float(paid.get("x")), float(approved.get("x"))
    end_pay = start_pay + float(paid.get("width"))
    end_approve = start_approve + float(approved.get("width"))
    assert start_pay < start_approve < end_approve < end_pay  # overlapping in time
    assert paid.get("y") != approved.get("y")  # each on its own lane, both visible
