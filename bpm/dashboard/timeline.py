"""A saga's history drawn as an inline SVG: one lane per step and direction, a bar per attempt.

Attempts are read from the event log, because a StepRun row is reused by every attempt of its
step and direction (only an operator's redrive makes a new one): an attempt runs from its
STEP_STARTED event to the event that closes it. The gap between a failed attempt and the next one
is its backoff (a dashed line); operator actions are vertical markers naming the user and reason.
Pure: it reads the rows it is given and touches no database.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from bpm.models import Direction, EventType, SagaEvent, SagaInstance, StepRun, StepStatus

# The event that ends an attempt, and the outcome it gives the attempt's bar.
CLOSING: dict[str, str] = {
    EventType.STEP_SUCCEEDED: "succeeded",
    EventType.ATTEMPT_FAILED: "retried",
    EventType.STEP_REFUSED: "refused",
    EventType.STEP_EXHAUSTED: "exhausted",
}
OUTCOME_LABELS = {
    "succeeded": "succeeded",
    "retried": "failed, retried",
    "refused": "refused",
    "exhausted": "failed, retries exhausted",
    "running": "running",
}
# Events that say something about the attempt in progress; they go into its tooltip.
NOTES = (
    EventType.LEASE_EXPIRED,
    EventType.NULL_COMPENSATION,
    EventType.DUPLICATE_SKIPPED,
    EventType.HANGING_REFUSED,
    EventType.STEP_WAITING,
    EventType.SIGNAL_RECEIVED,
    EventType.TOKEN_SUCCEEDED,
    EventType.TOKEN_FAILED,
    EventType.TASK_CLAIMED,
    EventType.TASK_UNCLAIMED,
    EventType.TASK_COMPLETED,
    EventType.TASK_REJECTED,
    EventType.WAIT_TIMED_OUT,
)
OPERATOR_EVENTS: dict[str, str] = {
    EventType.OPERATOR_RETRY: "retry",
    EventType.OPERATOR_SKIP: "skip",
    EventType.OPERATOR_COMPENSATE: "compensate",
    EventType.OPERATOR_ABORT: "abort",
}
SAGA_EVENTS = (
    EventType.SAGA_STARTED,
    EventType.SAGA_COMPENSATING,
    EventType.SAGA_STUCK,
    EventType.SAGA_RESUMED,
    EventType.SAGA_COMPLETED,
    EventType.SAGA_COMPENSATED,
    EventType.SAGA_ABORTED,
)

LABEL_WIDTH = 230
PLOT_WIDTH = 720
RIGHT = 24
TOP = 34
LANE_HEIGHT = 26
BAR_HEIGHT = 14
AXIS_HEIGHT = 34
MIN_BAR = 3
MAX_TICKS = 8
# Tick spacings to choose from, in seconds: the smallest that gives at most MAX_TICKS ticks.
TICK_STEPS = (
    *(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    *(1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400),
)


@dataclass
class Attempt:
    lane: tuple[str, str]
    attempt: int
    start: datetime
    end: datetime
    outcome: str
    actor: str = ""
    error: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Backoff:
    lane: tuple[str, str]
    start: datetime
    end: datetime
    retry_at: str


@dataclass(frozen=True)
class Mark:
    """A moment on a lane: a skip by an operator or a cancellation."""

    lane: tuple[str, str]
    at: datetime
    kind: str
    text: str


@dataclass
class History:
    lanes: list[tuple[str, str]]
    attempts: list[Attempt] = field(default_factory=list)
    backoffs: list[Backoff] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)


def render_timeline(
    saga: SagaInstance, runs: Sequence[StepRun], events: Sequence[SagaEvent], now: datetime
) -> SafeString:
    """Return the saga's timeline as an inline <svg>; running attempts extend to `now`.

    `runs` need their `step` loaded; `events` are the saga's, in any order.
    """
    ordered = sorted(events, key=lambda event: (event.at, event.id or 0))
    history = read_history(runs, ordered, now)
    start, end = _span(saga, history, ordered, now)
    scale = _Scale(start, end)
    height = TOP + (len(history.lanes) + 1) * LANE_HEIGHT + AXIS_HEIGHT
    width = LABEL_WIDTH + PLOT_WIDTH + RIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="saga-timeline" role="img"'
        f' width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>Timeline of {escape(saga.definition_name)} {saga.id}</title>",
        *_lanes(history.lanes, height),
        *_axis(scale, height),
        *_saga_marks(ordered, scale),
        *(_backoff(gap, history.lanes, scale) for gap in history.backoffs),
        *(_bar(attempt, history.lanes, scale) for attempt in history.attempts),
        *(_mark(mark, history.lanes, scale) for mark in history.marks),
        *_operator_markers(ordered, scale, height),
        "</svg>",
    ]
    # Every text above went through escape().
    return mark_safe("".join(parts))


def read_history(runs: Sequence[StepRun], events: Sequence[SagaEvent], now: datetime) -> History:
    """Return the lanes, attempts, backoffs and marks that the events (in order) describe."""
    by_run: dict[int, list[SagaEvent]] = defaultdict(list)
    for event in events:
        if event.step_run_id is not None:
            by_run[event.step_run_id].append(event)
    history = History(lanes=_lane_order(runs))
    for run in runs:
        _read_run(run, by_run.get(run.id, []), now, history)
    history.attempts.sort(key=lambda attempt: attempt.start)
    return history


def lane_label(lane: tuple[str, str]) -> str:
    """Return 'take_payment →' or 'take_payment ↩ compensation'."""
    step, direction = lane
    return f"{step} →" if direction == Direction.FORWARD else f"{step} ↩ compensation"


def _lane_order(runs: Sequence[StepRun]) -> list[tuple[str, str]]:
    # Forward lanes in step order, then compensations newest step first, as they run.
    positions = {(run.step.name, run.direction): run.step.position for run in runs}
    forward = sorted((k for k in positions if k[1] == Direction.FORWARD), key=positions.__getitem__)
    undo = sorted(
        (k for k in positions if k[1] != Direction.FORWARD),
        key=positions.__getitem__,
        reverse=True,
    )
    return forward + undo


def _read_run(run: StepRun, events: list[SagaEvent], now: datetime, history: History) -> None:
    lane = (run.step.name, run.direction)
    current: Attempt | None = None
    failed_at: SagaEvent | None = None
    for event in events:
        if event.type == EventType.STEP_STARTED:
            if failed_at is not None:
                history.backoffs.append(_gap(lane, failed_at, event.at))
                failed_at = None
            current = Attempt(lane, event.attempt or 0, event.at, event.at, "running", event.actor)
            history.attempts.append(current)
        elif event.type in CLOSING and current is not None:
            current.end, current.outcome = event.at, CLOSING[event.type]
            if event.type != EventType.STEP_SUCCEEDED:
                current.error = _error_text(event)
            if event.type == EventType.ATTEMPT_FAILED:
                failed_at = event
            current = None
        elif event.type in NOTES and current is not None:
            current.notes.append(event.message or event.get_type_display())
        elif event.type in (EventType.STEP_SKIPPED, EventType.STEP_CANCELLED):
            if failed_at is not None:
                history.backoffs.append(_gap(lane, failed_at, event.at))
                failed_at = None
            kind = "skipped" if event.type == EventType.STEP_SKIPPED else "cancelled"
            history.marks.append(Mark(lane, event.at, kind, f"{kind} by {event.actor}"))
    if current is not None:
        # No closing event yet: the attempt is still running.
        current.end = max(now, current.start)
    if failed_at is not None and run.status == StepStatus.PENDING:
        history.backoffs.append(_gap(lane, failed_at, max(now, failed_at.at)))


def _gap(lane: tuple[str, str], failed: SagaEvent, end: datetime) -> Backoff:
    return Backoff(lane, failed.at, end, str((failed.data or {}).get("retry_at", "")))


def _error_text(event: SagaEvent) -> str:
    data = event.data or {}
    kind = data.get("type") or data.get("code") or ""
    message = event.message or data.get("message", "")
    return f"{kind}: {message}" if kind else message


def _span(
    saga: SagaInstance, history: History, events: Sequence[SagaEvent], now: datetime
) -> tuple[datetime, datetime]:
    moments = [saga.created_at, *(event.at for event in events)]
    moments += [attempt.end for attempt in history.attempts]
    moments += [gap.end for gap in history.backoffs]
    if saga.is_active:
        moments.append(now)
    return min(moments), max(moments)


class _Scale:
    """Maps times to x coordinates on the plot."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        # An instant saga still gets a plot one second wide.
        self.seconds = max((end - start).total_seconds(), 0.001) if end > start else 1.0

    def x(self, moment: datetime) -> float:
        offset = (moment - self.start).total_seconds() / self.seconds
        return round(LABEL_WIDTH + min(max(offset, 0.0), 1.0) * PLOT_WIDTH, 1)


def _lane_y(lanes: list[tuple[str, str]], lane: tuple[str, str]) -> int:
    # Lane 0 is the saga's own lane; step lanes follow.
    return TOP + (lanes.index(lane) + 1) * LANE_HEIGHT


def _lanes(lanes: list[tuple[str, str]], height: int) -> Iterable[str]:
    rows = [("saga", "saga", "")] + [
        (f"{step}:{direction}", lane_label((step, direction)), direction.lower())
        for step, direction in lanes
    ]
    for index, (key, label, direction) in enumerate(rows):
        y = TOP + index * LANE_HEIGHT
        classes = "timeline-lane" + (f" lane-{direction}" if direction else " lane-saga")
        yield f'<g class="{classes}" data-lane="{escape(key)}">'
        yield (
            f'<rect class="timeline-lane-band" x="0" y="{y}" width="{LABEL_WIDTH + PLOT_WIDTH}"'
            f' height="{LANE_HEIGHT}"/>'
        )
        yield (
            f'<text class="timeline-lane-label" x="{LABEL_WIDTH - 8}" y="{y + 17}"'
            f' text-anchor="end">{escape(label)}</text>'
        )
        yield "</g>"


def _axis(scale: _Scale, height: int) -> Iterable[str]:
    y = height - AXIS_HEIGHT
    step = next(
        (s for s in TICK_STEPS if scale.seconds / s <= MAX_TICKS),
        # Beyond the table: whole days.
        math.ceil(scale.seconds / MAX_TICKS / 86400) * 86400,
    )
    yield f'<g class="timeline-axis" data-start="{scale.start.isoformat()}">'
    yield (
        f'<line class="timeline-axis-line" x1="{LABEL_WIDTH}" y1="{y}"'
        f' x2="{LABEL_WIDTH + PLOT_WIDTH}" y2="{y}"/>'
    )
    yield (
        f'<text class="timeline-axis-start" x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end">'
        f"{escape(_clock(scale.start))}</text>"
    )
    count = int(scale.seconds / step + 1e-9)
    for index in range(count + 1):
        offset = index * step
        x = round(LABEL_WIDTH + offset / scale.seconds * PLOT_WIDTH, 1)
        yield (
            f'<line class="timeline-grid" x1="{x}" y1="{TOP}" x2="{x}" y2="{y + 4}"/>'
            f'<text class="timeline-tick" x="{x}" y="{y + 16}" text-anchor="middle">'
            f"{escape(_offset(offset))}</text>"
        )
    yield "</g>"


def _bar(attempt: Attempt, lanes: list[tuple[str, str]], scale: _Scale) -> str:
    x1, x2 = scale.x(attempt.start), scale.x(attempt.end)
    y = _lane_y(lanes, attempt.lane) + (LANE_HEIGHT - BAR_HEIGHT) // 2
    step, direction = attempt.lane
    tooltip = [
        f"{lane_label(attempt.lane)} attempt {attempt.attempt}",
        f"status: {OUTCOME_LABELS[attempt.outcome]}",
        f"started: {_clock(attempt.start)}",
        f"ended: {_clock(attempt.end)}" if attempt.outcome != "running" else "ended: not yet",
        f"duration: {_duration(attempt.end - attempt.start)}",
    ]
    if attempt.actor:
        tooltip.append(f"by: {attempt.actor}")
    if attempt.error:
        tooltip.append(f"error: {attempt.error}")
    tooltip.extend(attempt.notes)
    return (
        f'<rect class="timeline-bar outcome-{attempt.outcome}" data-lane="{escape(step)}:'
        f'{direction}" data-attempt="{attempt.attempt}" data-outcome="{attempt.outcome}"'
        f' x="{x1}" y="{y}" width="{max(x2 - x1, MIN_BAR):.1f}" height="{BAR_HEIGHT}" rx="2">'
        f"<title>{escape(chr(10).join(tooltip))}</title></rect>"
    )


def _backoff(gap: Backoff, lanes: list[tuple[str, str]], scale: _Scale) -> str:
    y = _lane_y(lanes, gap.lane) + LANE_HEIGHT // 2
    step, direction = gap.lane
    text = f"backoff {_duration(gap.end - gap.start)}"
    if gap.retry_at:
        text += f", retry due {gap.retry_at}"
    return (
        f'<line class="timeline-backoff" data-lane="{escape(step)}:{direction}"'
        f' x1="{scale.x(gap.start)}" y1="{y}" x2="{scale.x(gap.end)}" y2="{y}">'
        f"<title>{escape(text)}</title></line>"
    )


def _mark(mark: Mark, lanes: list[tuple[str, str]], scale: _Scale) -> str:
    x, y = scale.x(mark.at), _lane_y(lanes, mark.lane) + LANE_HEIGHT // 2
    step, direction = mark.lane
    half = BAR_HEIGHT // 2
    points = f"{x},{y - half} {x + half},{y} {x},{y + half} {x - half},{y}"
    return (
        f'<polygon class="timeline-mark mark-{mark.kind}" data-lane="{escape(step)}:{direction}"'
        f' points="{points}"><title>{escape(f"{mark.text} at {_clock(mark.at)}")}</title></polygon>'
    )


def _saga_marks(events: Sequence[SagaEvent], scale: _Scale) -> Iterable[str]:
    y = TOP + LANE_HEIGHT // 2
    for event in events:
        if event.type in SAGA_EVENTS:
            text = f"{event.get_type_display()} at {_clock(event.at)} by {event.actor}"
            if event.message:
                text += f": {event.message}"
            yield (
                f'<circle class="timeline-saga-event type-{event.type.lower()}"'
                f' data-type="{event.type}" cx="{scale.x(event.at)}" cy="{y}" r="5">'
                f"<title>{escape(text)}</title></circle>"
            )


def _operator_markers(events: Sequence[SagaEvent], scale: _Scale, height: int) -> Iterable[str]:
    operator = [event for event in events if event.type in OPERATOR_EVENTS]
    for index, event in enumerate(operator):
        x = scale.x(event.at)
        user = _user(event.actor)
        action = OPERATOR_EVENTS[event.type]
        text = f"{action} by {user} at {_clock(event.at)}\nreason: {event.message}"
        # Alternate label rows so two actions close together stay readable; near the right
        # edge the label goes left of its line so it is not cut off.
        label_y = 12 + (index % 2) * 14
        right = x > LABEL_WIDTH + PLOT_WIDTH * 0.75
        label_x, anchor = (x - 3, "end") if right else (x + 3, "start")
        yield (
            f'<g class="timeline-operator" data-type="{event.type}" data-user="{escape(user)}">'
            f"<title>{escape(text)}</title>"
            f'<line class="timeline-operator-line" x1="{x}" y1="{label_y + 3}" x2="{x}"'
            f' y2="{height - AXIS_HEIGHT}"/>'
            f'<text class="timeline-operator-label" x="{label_x}" y="{label_y}"'
            f' text-anchor="{anchor}">'
            f"{escape(f'{action} by {user}')}</text></g>"
        )


def _user(actor: str) -> str:
    return actor.removeprefix("user:")


def _clock(moment: datetime) -> str:
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _offset(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds < 1:
        return f"+{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"+{seconds:g}s"
    if seconds < 3600:
        minutes, rest = divmod(int(seconds), 60)
        return f"+{minutes}m{rest:02d}s" if rest else f"+{minutes}m"
    hours, rest = divmod(int(seconds), 3600)
    return f"+{hours}h{rest // 60:02d}m" if rest else f"+{hours}h"
