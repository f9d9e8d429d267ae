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

from bpm.dashboard import timeline_layout as layout
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
    EventType.OPERATOR_RERUN: "rerun",
    EventType.SAGA_PAUSED: "pause",
    EventType.SAGA_UNPAUSED: "resume",
    EventType.SAGA_ASSIGNED: "assign",
    EventType.SAGA_ACKNOWLEDGED: "acknowledge",
    EventType.COMMENTED: "comment",
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
    # The events that opened and closed it (the attempt drawer reads them).
    started: SagaEvent | None = None
    closed: SagaEvent | None = None


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
    saga: SagaInstance,
    runs: Sequence[StepRun],
    events: Sequence[SagaEvent],
    now: datetime,
    *,
    zoom: tuple[float, float] | None = None,
) -> SafeString:
    """Return the saga's timeline as an inline <svg>; running attempts extend to `now`.

    `runs` need their `step` loaded; `events` are the saga's, in any order. `zoom` is a range in
    seconds from the saga's first moment: only that part is drawn. Attempts are numbered in start
    order over the whole history (`#attempt-<n>`), so a number means the same attempt zoomed or not.
    """
    ordered = sorted(events, key=lambda event: (event.at, event.id or 0))
    history = read_history(runs, ordered, now)
    first, last = _span(saga, history, ordered, now)
    scale = _Scale(first, last, history, zoom)
    operator = list(_operator_labels(ordered, scale))
    label_rows = max((row for _, _, _, row, _ in operator), default=1) + 1
    top = max(TOP, 12 + label_rows * 14)
    lanes = _lane_rows(history, scale, top)
    plot_bottom = lanes.bottom
    break_rows = scale.break_label_rows()
    height = plot_bottom + AXIS_HEIGHT + break_rows * 14
    width = LABEL_WIDTH + PLOT_WIDTH + RIGHT
    numbers = {id(attempt): index for index, attempt in enumerate(history.attempts, start=1)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="saga-timeline" role="group"'
        f' aria-label="Timeline of {escape(saga.definition_name)} {saga.id}"'
        f' width="100%" preserveAspectRatio="xMinYMin meet" data-width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>Timeline of {escape(saga.definition_name)} {saga.id}</title>",
        *_lanes(history.lanes, lanes),
        *_axis(scale, plot_bottom, top),
        *_saga_marks(ordered, scale, top),
        *(_backoff(gap, lanes, scale) for gap in history.backoffs if _shown(scale, gap)),
        *(
            _bar(attempt, numbers[id(attempt)], lanes, scale)
            for attempt in history.attempts
            if scale.shows(attempt.start, attempt.end)
        ),
        *(_mark(mark, lanes, scale) for mark in history.marks if scale.shows(mark.at, mark.at)),
        *_operator_markers(operator, plot_bottom),
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
            current = Attempt(
                lane, event.attempt or 0, event.at, event.at, "running", event.actor, started=event
            )
            history.attempts.append(current)
        elif event.type in CLOSING and current is not None:
            current.end, current.outcome = event.at, CLOSING[event.type]
            current.closed = event
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
    """Maps times to x coordinates on the plot, long idle gaps compressed (timeline_layout)."""

    def __init__(
        self, first: datetime, last: datetime, history: History, zoom: tuple[float, float] | None
    ) -> None:
        self.first = first
        lo, hi = (0.0, (last - first).total_seconds()) if zoom is None else zoom
        self.start = first + timedelta(seconds=max(lo, 0.0))
        end = min(first + timedelta(seconds=hi), last) if zoom is not None else last
        # An instant saga still gets a plot one second wide.
        self.seconds = max((end - self.start).total_seconds(), 0.001) if end > self.start else 1.0
        self.end = self.start + timedelta(seconds=self.seconds)
        active = [
            (self._offset(attempt.start), self._offset(attempt.end)) for attempt in history.attempts
        ]
        self.axis = layout.Axis(layout.segments(active, self.seconds), PLOT_WIDTH)

    def _offset(self, moment: datetime) -> float:
        return (moment - self.start).total_seconds()

    def x(self, moment: datetime) -> float:
        return round(LABEL_WIDTH + self.axis.x(self._offset(moment)), 1)

    def shows(self, start: datetime, end: datetime) -> bool:
        return end >= self.start and start <= self.end

    def plain_seconds(self) -> float:
        return sum(s.seconds for s in self.axis.segments if not s.compressed) or self.seconds

    def breaks(self) -> list[tuple[float, layout.Segment]]:
        return [
            (LABEL_WIDTH + left, segment)
            for left, segment in zip(self.axis.lefts, self.axis.segments, strict=True)
            if segment.compressed
        ]

    def break_labels(self) -> list[tuple[float, int, str]]:
        breaks = self.breaks()
        texts = [_break_text(segment) for _, segment in breaks]
        anchors = [x - LABEL_WIDTH for x, _ in breaks]
        return layout.place_labels(anchors, texts, PLOT_WIDTH + RIGHT)

    def break_label_rows(self) -> int:
        return max((row + 1 for _, row, _ in self.break_labels()), default=0)

    def zoomed_from(self) -> float:
        return (self.start - self.first).total_seconds()


def _break_text(segment: layout.Segment) -> str:
    return f"{_duration(timedelta(seconds=segment.seconds))} idle"


@dataclass
class _LaneRows:
    """Where each lane sits and how tall it is: overlapping bars get rows of their own."""

    tops: dict[tuple[str, str], int]
    heights: dict[tuple[str, str], int]
    bar_rows: dict[int, int]
    bottom: int

    def y(self, lane: tuple[str, str]) -> int:
        return self.tops[lane]

    def middle(self, lane: tuple[str, str]) -> int:
        return self.tops[lane] + self.heights[lane] // 2


SAGA_LANE = ("saga", "saga")
ROW_STEP = BAR_HEIGHT + 3


def _lane_rows(history: History, scale: _Scale, top: int) -> _LaneRows:
    bar_rows: dict[int, int] = {}
    heights = {SAGA_LANE: LANE_HEIGHT}
    for lane in history.lanes:
        mine = [a for a in history.attempts if a.lane == lane and scale.shows(a.start, a.end)]
        spans = [
            layout.bar(scale.x(a.start) - LABEL_WIDTH, scale.x(a.end) - LABEL_WIDTH, PLOT_WIDTH)
            for a in mine
        ]
        rows = layout.stack(spans)
        bar_rows.update({id(a): row for a, row in zip(mine, rows, strict=True)})
        heights[lane] = LANE_HEIGHT + max(rows, default=0) * ROW_STEP
    tops: dict[tuple[str, str], int] = {}
    y = top
    for lane in [SAGA_LANE, *history.lanes]:
        tops[lane] = y
        y += heights[lane]
    return _LaneRows(tops, heights, bar_rows, y)


def _lanes(lanes: list[tuple[str, str]], rows: _LaneRows) -> Iterable[str]:
    keyed = [(SAGA_LANE, "saga", "saga", "")] + [
        ((step, direction), f"{step}:{direction}", lane_label((step, direction)), direction.lower())
        for step, direction in lanes
    ]
    for lane, key, label, direction in keyed:
        y, height = rows.y(lane), rows.heights[lane]
        classes = "timeline-lane" + (f" lane-{direction}" if direction else " lane-saga")
        shown = layout.fit(label, LABEL_WIDTH - 12)
        yield f'<g class="{classes}" data-lane="{escape(key)}">'
        yield (
            f'<rect class="timeline-lane-band" x="0" y="{y}" width="{LABEL_WIDTH + PLOT_WIDTH}"'
            f' height="{height}"/>'
        )
        yield (
            f'<text class="timeline-lane-label" x="{LABEL_WIDTH - 8}" y="{y + 17}"'
            f' text-anchor="end">{escape(shown)}<title>{escape(label)}</title></text>'
        )
        yield "</g>"


def _axis(scale: _Scale, bottom: int, top: int) -> Iterable[str]:
    y = bottom
    plain = scale.plain_seconds()
    step = next(
        (s for s in TICK_STEPS if plain / s <= MAX_TICKS),
        # Beyond the table: whole days.
        math.ceil(plain / MAX_TICKS / 86400) * 86400,
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
    for x, label in _ticks(scale, step):
        yield (
            f'<line class="timeline-grid" x1="{x}" y1="{top}" x2="{x}" y2="{y + 4}"/>'
            f'<text class="timeline-tick" x="{x}" y="{y + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    labels = scale.break_labels()
    for (x, segment), (left, row, _) in zip(scale.breaks(), labels, strict=True):
        width = scale.axis.break_width
        text = _break_text(segment)
        yield (
            f'<g class="timeline-break" data-seconds="{segment.seconds:.3f}">'
            f"<title>{escape(f'{text}: compressed')}</title>"
            f'<rect class="timeline-break-band" x="{x:.1f}" y="{top}" width="{width:.1f}"'
            f' height="{y - top}"/>'
            f'<path class="timeline-break-zigzag" d="{_zigzag(x + width / 2, top, y)}"/>'
            f'<text class="timeline-break-label" x="{LABEL_WIDTH + left:.1f}"'
            f' y="{y + 30 + row * 14}">{escape(text)}</text></g>'
        )
    yield "</g>"


def _zigzag(x: float, top: int, bottom: int) -> str:
    points = [f"M{x:.1f},{top}"]
    for index, y in enumerate(range(top + 6, bottom, 6)):
        points.append(f"L{x + (3 if index % 2 == 0 else -3):.1f},{y}")
    points.append(f"L{x:.1f},{bottom}")
    return " ".join(points)


def _ticks(scale: _Scale, step: float) -> list[tuple[float, str]]:
    """Return (x, label) of the ticks on the uncompressed parts, none colliding with another."""
    ticks: list[tuple[float, str]] = []
    offset = scale.zoomed_from()
    for segment in scale.axis.segments:
        if segment.compressed:
            continue
        first = math.ceil((segment.start + offset) / step - 1e-9)
        index = first
        while index * step - offset <= segment.end + 1e-9:
            at = index * step - offset
            x = round(LABEL_WIDTH + scale.axis.x(at), 1)
            label = _offset(index * step)
            if (
                not ticks
                or x - ticks[-1][0]
                >= (layout.label_width(ticks[-1][1]) + layout.label_width(label)) / 2
                + layout.LABEL_GAP
            ):
                ticks.append((x, label))
            index += 1
    return ticks


def _bar(attempt: Attempt, number: int, lanes: _LaneRows, scale: _Scale) -> str:
    x, width = layout.bar(
        scale.x(attempt.start) - LABEL_WIDTH, scale.x(attempt.end) - LABEL_WIDTH, PLOT_WIDTH
    )
    row = lanes.bar_rows.get(id(attempt), 0)
    y = lanes.y(attempt.lane) + (LANE_HEIGHT - BAR_HEIGHT) // 2 + row * ROW_STEP
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
    label = (
        f"{lane_label(attempt.lane)} attempt {attempt.attempt}:"
        f" {OUTCOME_LABELS[attempt.outcome]}, {_duration(attempt.end - attempt.start)}"
        " — open details"
    )
    return (
        f'<rect class="timeline-bar outcome-{attempt.outcome}" data-lane="{escape(step)}:'
        f'{direction}" data-attempt="{attempt.attempt}" data-outcome="{attempt.outcome}"'
        f' data-index="{number}" id="attempt-bar-{number}" tabindex="0" role="button"'
        f' aria-label="{escape(label)}" aria-haspopup="dialog"'
        f' x="{LABEL_WIDTH + x:.1f}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" rx="2">'
        f"<title>{escape(chr(10).join(tooltip))}</title></rect>"
    )


def _backoff(gap: Backoff, lanes: _LaneRows, scale: _Scale) -> str:
    y = lanes.y(gap.lane) + LANE_HEIGHT // 2
    step, direction = gap.lane
    text = f"backoff {_duration(gap.end - gap.start)}"
    if gap.retry_at:
        text += f", retry due {gap.retry_at}"
    return (
        f'<line class="timeline-backoff" data-lane="{escape(step)}:{direction}"'
        f' x1="{scale.x(gap.start)}" y1="{y}" x2="{scale.x(gap.end)}" y2="{y}">'
        f"<title>{escape(text)}</title></line>"
    )


def _mark(mark: Mark, lanes: _LaneRows, scale: _Scale) -> str:
    x, y = scale.x(mark.at), lanes.y(mark.lane) + LANE_HEIGHT // 2
    step, direction = mark.lane
    half = BAR_HEIGHT // 2
    points = f"{x},{y - half} {x + half},{y} {x},{y + half} {x - half},{y}"
    return (
        f'<polygon class="timeline-mark mark-{mark.kind}" data-lane="{escape(step)}:{direction}"'
        f' points="{points}"><title>{escape(f"{mark.text} at {_clock(mark.at)}")}</title></polygon>'
    )


def _saga_marks(events: Sequence[SagaEvent], scale: _Scale, top: int) -> Iterable[str]:
    y = top + LANE_HEIGHT // 2
    for event in events:
        if event.type in SAGA_EVENTS and scale.shows(event.at, event.at):
            text = f"{event.get_type_display()} at {_clock(event.at)} by {event.actor}"
            if event.message:
                text += f": {event.message}"
            yield (
                f'<circle class="timeline-saga-event type-{event.type.lower()}"'
                f' data-type="{event.type}" cx="{scale.x(event.at)}" cy="{y}" r="5">'
                f"<title>{escape(text)}</title></circle>"
            )


def _operator_labels(
    events: Sequence[SagaEvent], scale: _Scale
) -> Iterable[tuple[SagaEvent, float, float, int, str]]:
    """Yield (event, line x, label x, label row, anchor) for each operator event in range.

    Labels go on as many rows as it takes for none to overlap another.
    """
    shown = [e for e in events if e.type in OPERATOR_EVENTS and scale.shows(e.at, e.at)]
    xs = [scale.x(event.at) for event in shown]
    texts = [_operator_text(event) for event in shown]
    placed = layout.place_labels([x - LABEL_WIDTH for x in xs], texts, PLOT_WIDTH + RIGHT)
    for event, x, (left, row, side) in zip(shown, xs, placed, strict=True):
        yield event, x, LABEL_WIDTH + left, row, side


def _operator_text(event: SagaEvent) -> str:
    text = f"{OPERATOR_EVENTS[event.type]} by {_user(event.actor)}"
    return text


def _operator_markers(
    placed: list[tuple[SagaEvent, float, float, int, str]], bottom: int
) -> Iterable[str]:
    for event, x, left, row, _ in placed:
        user = _user(event.actor)
        action = OPERATOR_EVENTS[event.type]
        text = f"{action} by {user} at {_clock(event.at)}"
        if event.message:
            text += "\n" if event.type == EventType.COMMENTED else "\nreason: "
            text += event.message
        label_y = 12 + row * 14
        yield (
            f'<g class="timeline-operator" data-type="{event.type}" data-user="{escape(user)}">'
            f"<title>{escape(text)}</title>"
            f'<line class="timeline-operator-line" x1="{x}" y1="{label_y + 3}" x2="{x}"'
            f' y2="{bottom}"/>'
            f'<text class="timeline-operator-label" x="{left:.1f}" y="{label_y}"'
            f' text-anchor="start">'
            f"{escape(_operator_text(event))}</text></g>"
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


def _shown(scale: _Scale, gap: Backoff) -> bool:
    return scale.shows(gap.start, gap.end)
