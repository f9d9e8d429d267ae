"""One attempt of one step, in detail: what it was given, what it changed, who ran it, how it ended.

An attempt is numbered as the timeline numbers it (start order over the saga's whole history), so
`…/sagas/<id>/#attempt-<n>` and `…/sagas/<id>/attempts/<n>/` name the same attempt.

Everything is read from the append-only event log, which already holds it: the worker is the actor
of the attempt's STEP_STARTED event; the output, the error and its traceback are in the event that
closed it; the input and the context at any moment are replayed from the start (the context is
the outputs of the steps that succeeded or were skipped, plus operators' edits, each logged with
its value). So the engine writes nothing more per step for this page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse

from bpm import clock
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.fragment import render_page
from bpm.dashboard.saga_page import SagaView, load_saga, pretty
from bpm.dashboard.timeline import OUTCOME_LABELS, lane_label, read_history
from bpm.models import Direction, EventType, SagaEvent

PAGE = "dashboard/attempt.html"
FRAGMENT = "dashboard/_attempt_detail.html"


@dataclass(frozen=True)
class AttemptDetail:
    number: int
    count: int
    lane: str
    step: str
    direction: str
    attempt: int
    outcome: str
    worker: str
    started: datetime
    ended: datetime | None
    duration: timedelta
    input: str
    context_before: str
    context_after: str
    output: str
    error: str
    traceback: str
    notes: list[str]


def attempt_detail(view: SagaView, number: int, now: datetime) -> AttemptDetail:
    """Return the saga's attempt number `number` (from 1), or raise Http404."""
    history = read_history(view.runs, view.events, now)
    if not 1 <= number <= len(history.attempts):
        raise Http404(f"saga {view.saga.id} has no attempt {number}")
    attempt = history.attempts[number - 1]
    state = replay(view.events, until=attempt.started, current_input=view.saga.input)
    closed = attempt.closed
    closed_data = dict(closed.data or {}) if closed is not None else {}
    step, direction = attempt.lane
    after = dict(state.context)
    output: Any = None
    if closed is not None and closed.type == EventType.STEP_SUCCEEDED:
        output = closed_data.get("output", {})
        if direction == Direction.FORWARD:
            after[step] = output
    elif closed is not None and closed.type == EventType.STEP_REFUSED:
        output = {"code": closed_data.get("code", ""), "message": closed.message}
    error = ""
    if closed is not None and closed.type != EventType.STEP_SUCCEEDED:
        kind = closed_data.get("type") or closed_data.get("code") or ""
        error = f"{kind}: {closed.message}" if kind else closed.message
    return AttemptDetail(
        number=number,
        count=len(history.attempts),
        lane=lane_label(attempt.lane),
        step=step,
        direction=direction,
        attempt=attempt.attempt,
        outcome=OUTCOME_LABELS[attempt.outcome],
        worker=attempt.actor,
        started=attempt.start,
        ended=attempt.end if closed is not None else None,
        duration=attempt.end - attempt.start,
        input=pretty(state.input),
        context_before=pretty(state.context),
        context_after=pretty(after) if closed is not None else "",
        output=pretty(output) if output is not None else "",
        error=error,
        traceback=str(closed_data.get("traceback", "") or ""),
        notes=list(attempt.notes),
    )


@dataclass
class State:
    input: dict[str, Any]
    context: dict[str, Any]


def replay(
    events: list[SagaEvent], *, until: SagaEvent | None, current_input: dict[str, Any]
) -> State:
    """Return the saga's input and context as they were just before `until` (events in order).

    The input before the first edit is that edit's "before"; with no edit it is today's input.
    """
    edits = [e for e in events if e.type == EventType.INPUT_EDITED]
    first_input = edits[0].data["before"] if edits else current_input
    state = State(input=dict(first_input), context={})
    for event in events:
        if event is until:
            break
        run = event.step_run if event.step_run_id is not None else None
        forward = run is not None and run.direction == Direction.FORWARD
        if event.type in (EventType.STEP_SUCCEEDED, EventType.STEP_SKIPPED) and forward:
            assert run is not None
            state.context[run.step.name] = (event.data or {}).get("output", {})
        elif event.type == EventType.CONTEXT_EDITED:
            state.context = dict(event.data["after"])
        elif event.type == EventType.INPUT_EDITED:
            state.input = dict(event.data["after"])
    return state


@dashboard_view
def attempt_page(request: HttpRequest, saga_id: uuid.UUID, number: int) -> HttpResponse:
    """Render one attempt: a whole page, or the drawer's content when htmx asks for it."""
    view = load_saga(saga_id)
    detail = attempt_detail(view, number, clock.now())
    title = f"{view.saga.definition_name} {view.saga.id}: attempt {number}"
    context = page_context(request, title, tab="sagas", saga=view.saga, detail=detail)
    return render_page(request, PAGE, FRAGMENT, context)
