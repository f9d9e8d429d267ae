"""The saga timeline: lanes, bars per attempt, backoffs, operator markers, an axis. No database."""

from __future__ import annotations

import itertools
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from bpm.dashboard.timeline import render_timeline
from bpm.models import (
    Direction,
    EventType,
    SagaEvent,
    SagaInstance,
    SagaStatus,
    StepDefinition,
    StepRun,
    StepStatus,
)

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FORWARD, COMPENSATION = Direction.FORWARD, Direction.COMPENSATION


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Story:
    """A saga's rows written by hand, in the order the engine would write them."""

    def __init__(self, status: str = SagaStatus.COMPLETED) -> None:
        self.saga = SagaInstance(
            id=uuid.UUID(int=1), definition_name="place_order", status=status, created_at=T0
        )
        self.steps = {
            name: StepDefinition(id=position, position=position, name=name, action=f"x.{name}")
            for position, name in enumerate(
                ["create_order", "take_payment", "approve_order", "send_confirmation"], start=1
            )
        }
        self.runs: list[StepRun] = []
        self.events: list[SagaEvent] = []
        self.ids = itertools.count(1)

    def run(self, step: str, direction: str = FORWARD, status: str = StepStatus.SUCCEEDED):
        run = StepRun(
            id=len(self.runs) + 1, step=self.steps[step], direction=direction, status=status
        )
        self.runs.append(run)
        return run

    def event(self, when: float, type: str, run=None, attempt=None, actor="worker:w1", **extra):
        self.events.append(
            SagaEvent(
                id=next(self.ids),
                saga=self.saga,
                step_run_id=run.id if run else None,
                type=type,
                at=at(when),
                attempt=attempt,
                actor=actor,
                message=extra.pop("message", ""),
                data=extra.pop("data", {}),
            )
        )

    def attempt(self, run, number, start, end, closing=EventType.STEP_SUCCEEDED, **extra):
        self.event(start, EventType.STEP_STARTED, run, number)
        self.event(end, closing, run, number, **extra)

    def render(self, now: float = 100) -> ET.Element:
        return ET.fromstring(render_timeline(self.saga, self.runs, self.events, at(now)))


def a_retried_payment() -> Story:
    story = Story()
    story.event(0, EventType.SAGA_STARTED, actor="test")
    create = story.run("create_order")
    story.attempt(create, 1, 1, 2)
    pay = story.run("take_payment")
    fault = {"type": "ConnectionError", "traceback": "Traceback ...", "retry_at": "later"}
    story.attempt(pay, 1, 3, 4, EventType.ATTEMPT_FAILED, message="gateway down", data=fault)
    story.attempt(pay, 2, 6, 7, EventType.ATTEMPT_FAILED, message="gateway down", data=fault)
    story.attempt(pay, 3, 11, 12)
    story.event(12, EventType.SAGA_COMPLETED)
    return story


def elements(root: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if css_class in e.get("class", "").split()]


def bars(root: ET.Element, lane: str | None = None) -> list[ET.Element]:
    found = elements(root, "rect", "timeline-bar")
    return [bar for bar in found if lane is None or bar.get("data-lane") == lane]


def lane_labels(root: ET.Element) -> dict[str, str]:
    return {
        lane.get("data-lane"): lane.find(f"{SVG}text").text
        for lane in elements(root, "g", "timeline-lane")
    }


def title(element: ET.Element) -> str:
    return element.find(f"{SVG}title").text


def test_there_is_a_lane_per_step_and_direction_with_a_readable_label():
    story = a_retried_payment()
    undo = story.run("create_order", COMPENSATION)
    story.attempt(undo, 1, 13, 14)
    assert lane_labels(story.render()) == {
        "saga": "saga",
        "create_order:FORWARD": "create_order →",
        "take_payment:FORWARD": "take_payment →",
        "create_order:COMPENSATION": "create_order ↩ compensation",
    }


def test_each_attempt_is_a_bar_coloured_by_its_outcome_in_time_order():
    payment = bars(a_retried_payment().render(), "take_payment:FORWARD")
    assert [bar.get("data-attempt") for bar in payment] == ["1", "2", "3"]
    assert [bar.get("data-outcome") for bar in payment] == ["retried", "retried", "succeeded"]
    assert "outcome-succeeded" in payment[2].get("class")
    xs = [float(bar.get("x")) for bar in payment]
    assert xs == sorted(xs) and len(set(xs)) == 3


def test_a_bar_spans_its_attempt_from_start_to_end():
    root = a_retried_payment().render()
    first, _, third = bars(root, "take_payment:FORWARD")
    # The plot runs from the saga's start (0 s) to its last event (12 s) over 720 px.
    per_second = 720 / 12
    assert float(first.get("width")) == pytest.approx(per_second, abs=0.2)
    assert float(third.get("x")) - float(first.get("x")) == pytest.approx(8 * per_second, abs=0.2)


def test_the_backoff_between_attempts_is_a_dashed_gap_from_one_end_to_the_next_start():
    root = a_retried_payment().render()
    attempts = bars(root, "take_payment:FORWARD")
    gaps = elements(root, "line", "timeline-backoff")
    assert len(gaps) == 2
    for gap, before, after in zip(gaps, attempts, attempts[1:], strict=False):
        assert float(gap.get("x1")) == pytest.approx(
            float(before.get("x")) + float(before.get("width")), abs=0.2
        )
        assert float(gap.get("x2")) == pytest.approx(float(after.get("x")), abs=0.2)
    assert title(gaps[1]) == "backoff 4.00 s, retry due later"


def test_hovering_a_bar_tells_step_attempt_status_times_duration_and_error():
    failed = bars(a_retried_payment().render(), "take_payment:FORWARD")[0]
    assert title(failed).splitlines() == [
        "take_payment → attempt 1",
        "status: failed, retried",
        "started: 2026-03-01 12:00:03.000",
        "ended: 2026-03-01 12:00:04.000",
        "duration: 1.00 s",
        "by: worker:w1",
        "error: ConnectionError: gateway down",
    ]


def test_a_running_attempt_extends_to_now_and_the_plot_reaches_now_while_active():
    story = Story(status=SagaStatus.RUNNING)
    story.event(0, EventType.SAGA_STARTED)
    run = story.run("create_order", status=StepStatus.RUNNING)
    story.event(10, EventType.STEP_STARTED, run, 1)
    (bar,) = bars(story.render(now=20))
    assert bar.get("data-outcome") == "running"
    assert float(bar.get("x")) == pytest.approx(230 + 360)
    assert float(bar.get("x")) + float(bar.get("width")) == pytest.approx(230 + 720)
    assert "ended: not yet" in title(bar)


def test_a_run_waiting_for_its_retry_shows_the_backoff_up_to_now():
    story = Story(status=SagaStatus.RUNNING)
    run = story.run("take_payment", status=StepStatus.PENDING)
    story.attempt(run, 1, 1, 2, EventType.ATTEMPT_FAILED, message="down", data={"retry_at": "x"})
    (gap,) = elements(story.render(now=4), "line", "timeline-backoff")
    assert float(gap.get("x2")) == pytest.approx(230 + 720)


def test_operator_actions_are_vertical_markers_with_the_user_and_the_reason():
    story = Story(status=SagaStatus.RUNNING)
    story.event(0, EventType.SAGA_STARTED)
    story.event(5, EventType.SAGA_STUCK, message="send_confirmation: bounced")
    story.event(9, EventType.OPERATOR_RETRY, actor="user:olga", message="mail server is back")
    root = story.render(now=10)
    (marker,) = elements(root, "g", "timeline-operator")
    assert (marker.get("data-type"), marker.get("data-user")) == ("OPERATOR_RETRY", "olga")
    assert marker.find(f"{SVG}text").text == "retry by olga"
    assert "reason: mail server is back" in title(marker)
    line = marker.find(f"{SVG}line")
    assert float(line.get("x1")) == float(line.get("x2")) == pytest.approx(230 + 648)


def test_saga_events_are_dots_on_the_saga_lane():
    root = a_retried_payment().render()
    dots = elements(root, "circle", "timeline-saga-event")
    assert [dot.get("data-type") for dot in dots] == ["SAGA_STARTED", "SAGA_COMPLETED"]


def test_a_skipped_step_is_marked_on_its_lane():
    story = Story(status=SagaStatus.COMPLETED)
    run = story.run("send_confirmation", status=StepStatus.SKIPPED)
    story.attempt(run, 1, 1, 2, EventType.STEP_EXHAUSTED, message="bounced")
    story.event(5, EventType.STEP_SKIPPED, run, actor="user:olga", message="phoned")
    (mark,) = elements(story.render(), "polygon", "timeline-mark")
    assert mark.get("data-lane") == "send_confirmation:FORWARD"
    assert title(mark).startswith("skipped by user:olga")


def test_the_time_axis_has_increasing_labels_from_zero():
    root = a_retried_payment().render()
    ticks = [tick.text for tick in elements(root, "text", "timeline-tick")]
    assert ticks == ["0", "+2s", "+4s", "+6s", "+8s", "+10s", "+12s"]
    (start,) = elements(root, "text", "timeline-axis-start")
    assert start.text == "2026-03-01 12:00:00.000"


@pytest.mark.parametrize(
    ("seconds", "first_ticks"),
    [(0.3, ["0", "+50ms", "+100ms"]), (600, ["0", "+2m", "+4m"]), (7200, ["0", "+15m", "+30m"])],
)
def test_the_axis_picks_a_readable_spacing_for_any_span(seconds, first_ticks):
    story = Story()
    story.event(seconds, EventType.SAGA_COMPLETED)
    ticks = [tick.text for tick in elements(story.render(), "text", "timeline-tick")]
    assert ticks[:3] == first_ticks and len(ticks) <= 9


def test_every_text_is_escaped():
    story = Story()
    run = story.run("create_order", status=StepStatus.FAILED)
    story.attempt(run, 1, 1, 2, EventType.STEP_REFUSED, message="<script>x()</script>")
    story.event(3, EventType.OPERATOR_ABORT, actor="user:<b>eve</b>", message="<i>why</i>")
    svg = render_timeline(story.saga, story.runs, story.events, at(5))
    assert "<script>" not in svg and "<b>" not in svg and "<i>" not in svg
    root = ET.fromstring(svg)
    assert "error: <script>x()</script>" in title(bars(root)[0])
    (marker,) = elements(root, "g", "timeline-operator")
    assert marker.get("data-user") == "<b>eve</b>"


def test_the_same_rows_give_the_same_svg():
    story = a_retried_payment()
    first = render_timeline(story.saga, story.runs, story.events, at(50))
    shuffled = list(reversed(story.events))
    assert render_timeline(story.saga, story.runs, shuffled, at(50)) == first


def test_a_saga_with_no_runs_yet_draws_only_the_saga_lane():
    story = Story(status=SagaStatus.RUNNING)
    story.event(0, EventType.SAGA_STARTED)
    root = story.render(now=0)
    assert list(lane_labels(root)) == ["saga"]
    assert bars(root) == []


def millisecond_steps_around_a_long_backoff() -> Story:
    story = Story()
    story.event(0, EventType.SAGA_STARTED, actor="test")
    pay = story.run("take_payment")
    fault = {"type": "ConnectionError", "retry_at": "later"}
    story.attempt(pay, 1, 0.001, 0.004, EventType.ATTEMPT_FAILED, message="down", data=fault)
    story.attempt(pay, 2, 300.0, 300.003)
    story.event(300.003, EventType.SAGA_COMPLETED)
    return story


def test_an_idle_gap_longer_than_the_work_is_a_break_labelled_with_its_length():
    root = millisecond_steps_around_a_long_backoff().render()
    (gap,) = elements(root, "g", "timeline-break")
    assert float(gap.get("data-seconds")) == pytest.approx(299.996, abs=0.01)
    (label,) = elements(gap, "text", "timeline-break-label")
    assert label.text == "4 min 59 s idle"
    first, second = bars(root)
    # Both 3 ms attempts are wide enough to see and click, and far apart from the break.
    assert float(first.get("width")) > 100 and float(second.get("width")) > 100


def test_the_svg_takes_the_page_width_and_every_bar_is_a_focusable_button():
    root = a_retried_payment().render()
    assert root.get("width") == "100%"
    assert root.get("viewBox").startswith("0 0 ")
    for number, bar in enumerate(bars(root), start=1):
        assert bar.get("tabindex") == "0"
        assert bar.get("role") == "button"
        assert bar.get("data-index") == str(number)
        assert "open details" in bar.get("aria-label")


def test_zooming_draws_only_the_range_and_keeps_the_attempt_numbers():
    story = a_retried_payment()
    root = ET.fromstring(render_timeline(story.saga, story.runs, story.events, at(50), zoom=(5, 8)))
    shown = bars(root)
    assert [bar.get("data-index") for bar in shown] == ["3"]
    ticks = [tick.text for tick in elements(root, "text", "timeline-tick")]
    assert ticks[0] == "+5s"


def test_operator_labels_close_together_never_share_a_row_where_they_would_overlap():
    story = a_retried_payment()
    for index in range(6):
        story.event(8 + index * 0.01, EventType.OPERATOR_RETRY, actor=f"user:operator{index}")
    labels = elements(story.render(), "text", "timeline-operator-label")
    rows = {(float(label.get("x")), label.get("y")) for label in labels}
    assert len({y for _, y in rows}) == 6


def test_a_long_step_name_is_cut_with_its_full_name_on_hover():
    story = Story()
    long_name = "a_step_with_a_very_long_name_that_would_not_fit_the_label_column"
    story.steps["create_order"].name = long_name
    create = story.run("create_order")
    story.attempt(create, 1, 1, 2)
    root = story.render()
    (lane,) = [e for e in elements(root, "g", "timeline-lane") if long_name in e.get("data-lane")]
    text = lane.find(f"{SVG}text")
    assert text.text.endswith("…") and len(text.text) < len(long_name)
    assert title(text) == f"{long_name} →"
