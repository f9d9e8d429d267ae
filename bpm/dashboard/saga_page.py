"""The saga page: one saga's state, diagram, timeline, event log and data, and what may be done.

The page loads a saga with a fixed number of queries whatever the length of its history: the
saga and its definition, then its steps, runs and events each in one prefetch. While the saga is
RUNNING or COMPENSATING its live region polls the same URL, which answers htmx with the region
alone (bpm.dashboard.fragment).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse

from bpm import clock, permissions, services
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.causes import cause_of
from bpm.dashboard.diagram import render_diagram, step_states
from bpm.dashboard.fragment import render_page
from bpm.dashboard.timeline import lane_label, read_history, render_timeline
from bpm.engine import LatestRuns
from bpm.models import (
    Direction,
    EventType,
    SagaEvent,
    SagaInstance,
    StepDefinition,
    StepRun,
)

PAGE = "dashboard/saga.html"
LIVE = "dashboard/_saga_live.html"
# How often the live region of an active saga asks again (htmx `every` syntax).
POLL_EVERY = "2s"


@dataclass(frozen=True)
class Action:
    """An operator action as the dashboard offers it: a button, a confirmation and a form."""

    name: str
    label: str
    # The permission (bpm.permissions) the action needs.
    permission: str
    summary: str


ACTIONS = {
    action.name: action
    for action in (
        Action(
            "retry",
            "Retry",
            permissions.RETRY,
            "Run the failed step again with the same input; finished steps are not rerun.",
        ),
        Action(
            "edit",
            "Retry with edited input",
            permissions.RETRY,
            "Replace the saga's input (checked against the definition's input schema), then"
            " run the failed step again.",
        ),
        Action(
            "skip",
            "Skip the failed step",
            permissions.SKIP,
            "Record the failed step as done by hand, with the output you give, and go on.",
        ),
        Action(
            "compensate",
            "Compensate",
            permissions.COMPENSATE,
            "Stop going forward and undo the finished steps, newest first.",
        ),
        Action(
            "abort",
            "Abort",
            permissions.ABORT,
            "Close the saga as resolved by hand: nothing more runs.",
        ),
        Action(
            "rerun",
            "Rerun from a step",
            permissions.RETRY,
            "Run the chosen step and every later one again, under new idempotency keys (the"
            " confirmation really goes out again), optionally with corrected input or outputs.",
        ),
        Action(
            "pause",
            "Pause",
            permissions.RETRY,
            "Hold the saga: a running step finishes, no new step starts until it is resumed.",
        ),
        Action(
            "resume",
            "Resume",
            permissions.RETRY,
            "Let the saga go on: its waiting steps ring again and held steps are scheduled.",
        ),
    )
}


@dataclass(frozen=True)
class EventRow:
    event: SagaEvent
    step: str
    is_error: bool
    is_operator: bool
    traceback: str
    data: str


@dataclass(frozen=True)
class RunRow:
    run: StepRun
    lane: str
    output: str


@dataclass(frozen=True)
class SagaView:
    """A saga and its history, loaded once, with everything the templates show."""

    saga: SagaInstance
    steps: list[StepDefinition]
    runs: list[StepRun]
    events: list[SagaEvent]

    @property
    def latest(self) -> LatestRuns:
        latest: LatestRuns = {}
        for run in self.runs:
            latest[(run.step.name, run.direction)] = run
        return latest


def load_saga(saga_id: uuid.UUID) -> SagaView:
    """Return the saga with its steps, runs and events in four queries, or raise Http404."""
    sagas = SagaInstance.objects.select_related("definition", "assignee").prefetch_related(
        Prefetch("definition__steps", queryset=StepDefinition.objects.order_by("position")),
        Prefetch("step_runs", queryset=StepRun.objects.order_by("id")),
        Prefetch("events", queryset=SagaEvent.objects.order_by("at", "id")),
    )
    try:
        saga = sagas.get(pk=saga_id)
    except SagaInstance.DoesNotExist:
        raise Http404(f"no saga with id {saga_id}") from None
    steps = list(saga.definition.steps.all())
    by_id = {step.id: step for step in steps}
    runs = list(saga.step_runs.all())
    for run in runs:
        # Joined by hand from the prefetched rows, so reading them costs no query.
        run.step = by_id[run.step_id]
        run.saga = saga
    runs_by_id = {run.id: run for run in runs}
    events = list(saga.events.all())
    for event in events:
        event.saga = saga
        if event.step_run_id is not None:
            event.step_run = runs_by_id[event.step_run_id]
    return SagaView(saga, steps, runs, events)


def allowed_actions(view: SagaView) -> list[str]:
    """Return the actions the saga's state allows, by the rules the services enforce."""
    allowed = services.saga_actions_allowed(view.saga, view.latest)
    if permissions.RETRY in allowed:
        # Retry with edited input is a retry, offered as its own button.
        allowed.insert(allowed.index(permissions.RETRY) + 1, "edit")
    return allowed


def buttons(view: SagaView, user: Any) -> list[Action]:
    """Return the actions to offer: those the state allows and the user may perform."""
    return [
        ACTIONS[name]
        for name in allowed_actions(view)
        if permissions.may(user, ACTIONS[name].permission)
    ]


def withheld(view: SagaView, user: Any) -> list[Action]:
    """Return the actions the saga's state allows but the user may not perform."""
    return [
        ACTIONS[name]
        for name in allowed_actions(view)
        if not permissions.may(user, ACTIONS[name].permission)
    ]


def pretty(value: Any) -> str:
    """Return a value as indented JSON for a <pre> (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def event_rows(events: list[SagaEvent]) -> list[EventRow]:
    """Return the event log's rows: errors keep their traceback, other data is shown folded."""
    rows = []
    for event in events:
        data = dict(event.data or {})
        traceback = str(data.pop("traceback", "") or "")
        run = event.step_run if event.step_run_id is not None else None
        rows.append(
            EventRow(
                event=event,
                step=lane_label((run.step.name, run.direction)) if run else "",
                is_error=bool(traceback) or event.type in ERROR_EVENTS,
                is_operator=event.actor.startswith("user:"),
                traceback=traceback,
                data=pretty(data) if data else "",
            )
        )
    return rows


ERROR_EVENTS = {
    EventType.ATTEMPT_FAILED,
    EventType.STEP_REFUSED,
    EventType.STEP_EXHAUSTED,
    EventType.SAGA_STUCK,
    EventType.LEASE_EXPIRED,
    EventType.HANGING_REFUSED,
    EventType.STALE_RESULT,
}


def latest_attempts(view: SagaView, now: datetime) -> dict[str, int]:
    """Return the number (as the timeline numbers it) of each step's latest forward attempt."""
    history = read_history(view.runs, view.events, now)
    latest: dict[str, int] = {}
    for number, attempt in enumerate(history.attempts, start=1):
        step, direction = attempt.lane
        if direction == Direction.FORWARD:
            latest[step] = number
    return latest


def parse_zoom(query: Mapping[str, str]) -> tuple[tuple[float, float] | None, str]:
    """Return the timeline's zoom range (seconds from the saga's start) and why it was refused."""
    low, high = query.get("from", "").strip(), query.get("to", "").strip()
    if not low and not high:
        return None, ""
    try:
        start = float(low or 0)
        end = float(high) if high else math.inf
    except ValueError:
        return None, "The zoom range must be two numbers of seconds; showing the whole timeline."
    if not (math.isfinite(start) and 0 <= start < end) or math.isnan(end):
        return None, "The zoom range must go from 0 or more to a later time; showing all of it."
    return (start, end), ""


def live_context(
    view: SagaView, user: Any, zoom: tuple[float, float] | None = None, **extra: Any
) -> dict[str, Any]:
    """Return what the live region shows: state, actions, diagram, timeline, events, data."""
    saga = view.saga
    now = clock.now()
    states = step_states(view.latest)
    for step in view.steps:
        states.setdefault(step.name, "not_reached")
    return {
        "saga": saga,
        "cause": cause_of(saga, view.runs),
        "poll_every": POLL_EVERY if saga.is_active else "",
        "actions": buttons(view, user),
        "withheld": withheld(view, user),
        # Assigning, acknowledging and commenting: operators (bpm.dashboard.saga_ownership).
        "may_own": permissions.may(user, permissions.RETRY),
        "diagram": render_diagram(view.steps, states, latest_attempts(view, now)),
        "timeline": render_timeline(saga, view.runs, view.events, now, zoom=zoom),
        "zoom": zoom,
        "events": event_rows(view.events),
        "comments": [e for e in view.events if e.type == EventType.COMMENTED],
        "runs": [
            RunRow(run, lane_label((run.step.name, run.direction)), pretty(run.output))
            for run in view.runs
        ],
        "input": pretty(saga.input),
        "context": pretty(saga.context),
        "failure": pretty(saga.failure) if saga.failure else "",
        **extra,
    }


@dashboard_view
def saga_page(request: HttpRequest, saga_id: uuid.UUID) -> HttpResponse:
    """Render a saga's page, or only its live region when htmx polls for it."""
    view = load_saga(saga_id)
    title = f"{view.saga.definition_name} {view.saga.id}"
    zoom, zoom_error = parse_zoom(request.GET)
    live = live_context(view, request.user, zoom, zoom_error=zoom_error)
    context = page_context(request, title, tab="sagas", **live)
    return render_page(request, PAGE, LIVE, context)
