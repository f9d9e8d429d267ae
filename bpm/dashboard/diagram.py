"""A saga definition drawn as an inline SVG: its steps, forward arrows and compensation arrows.

The SVG is built on the server from escaped text and styled by classes in dashboard.css, which
take their colours from the admin's CSS variables, so it follows the admin's light or dark theme.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from bpm import graph
from bpm.models import Direction, StepKind, StepStatus

STATES = {
    "done": "done",
    "running": "running",
    "waiting": "waiting",
    "failed": "failed",
    "compensated": "compensated",
    "compensating": "compensating",
    "skipped": "skipped",
    "not_reached": "not reached",
}
KIND_LABELS: dict[str, str] = {
    StepKind.COMPENSATABLE: "compensatable",
    StepKind.PIVOT: "◆ pivot",
    StepKind.RETRIABLE: "↻ retriable",
}
# A failed or cancelled run holds the saga: both show as failed.
FORWARD_STATES: dict[str, str] = {
    StepStatus.SUCCEEDED: "done",
    StepStatus.SKIPPED: "skipped",
    StepStatus.PENDING: "running",
    StepStatus.RUNNING: "running",
    # A signal, a task token or a person: no worker holds it.
    StepStatus.WAITING: "waiting",
}
# A compensation skipped by an operator was done by hand: the step is undone all the same.
COMPENSATION_STATES: dict[str, str] = {
    StepStatus.SUCCEEDED: "compensated",
    StepStatus.SKIPPED: "compensated",
    StepStatus.PENDING: "compensating",
    StepStatus.RUNNING: "compensating",
}

MARGIN = 12
BOX_WIDTH = 184
BOX_HEIGHT = 66
GAP = 44
UNDO_HEIGHT = 34
UNDO_DROP = 40
ARROW = 7
# A label longer than this is cut with an ellipsis; the box's tooltip keeps the whole text.
MAX_LABEL = 24


class Step(Protocol):
    """What the diagram reads from a step (a StepDefinition row, saved or not)."""

    name: str
    action: str
    compensation: str
    kind: str
    max_attempts: int
    after: Any  # the names of the steps it waits for, or None for the step before it


Place = tuple[int, int]
"""A step's column (its depth in the graph) and row (its place among the steps of that depth)."""


class Run(Protocol):
    """What `step_states` reads from a step run."""

    status: str


def render_diagram(
    steps: Sequence[Step],
    states: Mapping[str, str] | None = None,
    attempts: Mapping[str, int] | None = None,
) -> SafeString:
    """Return the steps as an inline <svg>, each box coloured by `states` (step name → state).

    States are the keys of STATES; with no states the definition is drawn plainly. `attempts`
    maps a step to the number of its latest attempt (the timeline's `#attempt-<n>`): its box
    then opens that attempt when clicked or focused and pressed.
    """
    unknown = sorted({state for state in (states or {}).values() if state not in STATES})
    if unknown:
        raise ValueError(f"unknown step states {unknown}; expected one of {sorted(STATES)}")
    has_undo = any(step.compensation for step in steps)
    dag = _graph(steps)
    places = _places(dag)
    columns = max((column for column, _ in places.values()), default=0) + 1
    rows = max((row for _, row in places.values()), default=0) + 1
    pitch = _row_pitch(has_undo)
    width = 2 * MARGIN + columns * (BOX_WIDTH + GAP) - GAP
    height = 2 * MARGIN + rows * pitch - GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="saga-diagram" role="img"'
        f' width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(_summary(dag))}</title>",
        *_forward_arrows(dag, places, pitch),
        *_undo_arrows(steps, dag, places, pitch),
    ]
    for step in steps:
        state = (states or {}).get(step.name, "")
        place = places[step.name]
        parts.extend(_step_box(place, step, state, pitch, (attempts or {}).get(step.name)))
        if step.compensation:
            parts.extend(_undo_box(place, step, state, pitch))
    parts.append("</svg>")
    # Every text above went through escape().
    return mark_safe("".join(parts))


def _graph(steps: Sequence[Step]) -> dict[str, tuple[str, ...]]:
    """Return who waits for whom; an order that cannot run (a draft being fixed) draws as a line."""
    dag = graph.predecessors((step.name, getattr(step, "after", None)) for step in steps)
    names = set(dag)
    dag = {name: tuple(b for b in before if b in names) for name, before in dag.items()}
    if graph.find_cycle(dag):
        return graph.predecessors((step.name, None) for step in steps)
    return dag


def _places(dag: graph.Graph) -> dict[str, Place]:
    """Lay the steps out in layers: a column per depth, parallel steps one below the other."""
    return {
        name: (column, row)
        for column, layer in enumerate(graph.layers(dag))
        for row, name in enumerate(layer)
    }


def _row_pitch(has_undo: bool) -> int:
    return BOX_HEIGHT + (UNDO_DROP + UNDO_HEIGHT if has_undo else 0) + GAP


def _top(place: Place, pitch: int) -> int:
    return MARGIN + place[1] * pitch


def step_states(runs: Mapping[tuple[str, str], Run]) -> dict[str, str]:
    """Return each step's diagram state from the latest run of each (step name, direction)."""
    states: dict[str, str] = {}
    for (name, direction), run in runs.items():
        if direction == Direction.FORWARD and name not in states:
            states[name] = _forward_state(run.status)
    for (name, direction), run in runs.items():
        if direction == Direction.COMPENSATION:
            states[name] = _compensation_state(run.status)
    return states


def _forward_state(status: str) -> str:
    return FORWARD_STATES.get(status, "failed")


def _compensation_state(status: str) -> str:
    return COMPENSATION_STATES.get(status, "failed")


def _summary(dag: graph.Graph) -> str:
    # Steps that run at the same time are listed together: "a → b, c → d".
    return "Saga steps: " + " → ".join(", ".join(layer) for layer in graph.layers(dag))


def _left(place: Place) -> int:
    return MARGIN + place[0] * (BOX_WIDTH + GAP)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _step_box(
    place: Place, step: Step, state: str, pitch: int, attempt: int | None = None
) -> Iterable[str]:
    x, y = _left(place), _top(place, pitch)
    classes = f"diagram-step kind-{step.kind.lower()}" + (f" state-{state}" if state else "")
    state_attr = f' data-state="{state}"' if state else ""
    if attempt is not None:
        label = f"{step.name}: open its latest attempt"
        state_attr += (
            f' data-index="{attempt}" tabindex="0" role="button" aria-haspopup="dialog"'
            f' aria-label="{escape(label)}"'
        )
    yield (
        f'<g class="{classes}" data-step="{escape(step.name)}" data-kind="{escape(step.kind)}"'
        f"{state_attr}>"
    )
    yield f"<title>{escape(_step_tooltip(step, state))}</title>"
    yield (
        f'<rect class="diagram-box" x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}"'
        ' rx="6"/>'
    )
    if step.kind == StepKind.PIVOT:
        # A second border inside the first marks the point of no return.
        yield (
            f'<rect class="diagram-pivot-ring" x="{x + 4}" y="{y + 4}" width="{BOX_WIDTH - 8}"'
            f' height="{BOX_HEIGHT - 8}" rx="4"/>'
        )
    yield (f'<text class="diagram-name" x="{x + 12}" y="{y + 22}">{escape(_cut(step.name))}</text>')
    yield (
        f'<text class="diagram-handler" x="{x + 12}" y="{y + 39}">'
        f"{escape(_cut(step.action))}</text>"
    )
    if step.kind != StepKind.COMPENSATABLE:
        # Compensatable is the common kind, shown by its undo box; this row is left to the state.
        kind = KIND_LABELS.get(step.kind, step.kind.lower())
        yield f'<text class="diagram-kind" x="{x + 12}" y="{y + 56}">{escape(kind)}</text>'
    if state:
        yield (
            f'<text class="diagram-state" x="{x + BOX_WIDTH - 10}" y="{y + 56}"'
            f' text-anchor="end">{escape(STATES[state])}</text>'
        )
    yield "</g>"


def _step_tooltip(step: Step, state: str) -> str:
    lines = [
        f"{step.name} ({KIND_LABELS.get(step.kind, step.kind.lower())})",
        f"action: {step.action}",
        f"compensation: {step.compensation or 'none'}",
        f"up to {step.max_attempts} attempts",
    ]
    if state:
        lines.append(f"state: {STATES[state]}")
    return "\n".join(lines)


def _undo_box(place: Place, step: Step, state: str, pitch: int) -> Iterable[str]:
    x, y = _left(place), _top(place, pitch) + BOX_HEIGHT + UNDO_DROP
    active = state in ("compensated", "compensating")
    classes = "diagram-undo" + (f" state-{state}" if active else "")
    yield f'<g class="{classes}" data-compensation="{escape(step.name)}">'
    yield f"<title>{escape(f'{step.name} ↩ compensation: {step.compensation}')}</title>"
    yield (
        f'<rect class="diagram-box" x="{x + 10}" y="{y}" width="{BOX_WIDTH - 20}"'
        f' height="{UNDO_HEIGHT}" rx="6"/>'
    )
    yield (
        f'<text class="diagram-handler" x="{x + 20}" y="{y + 21}">'
        f"↩ {escape(_cut(step.compensation))}</text>"
    )
    yield "</g>"
    # The dashed link down from the step to its compensation.
    mid = x + BOX_WIDTH // 2
    top, bottom = _top(place, pitch) + BOX_HEIGHT, y
    yield (
        f'<line class="diagram-arrow diagram-undo-link" x1="{mid}" y1="{top}" x2="{mid}"'
        f' y2="{bottom - ARROW}"/>'
    )
    yield _arrowhead(mid, bottom, "down", "diagram-undo-link")


def _forward_arrows(dag: graph.Graph, places: Mapping[str, Place], pitch: int) -> Iterable[str]:
    """Yield an arrow from each step to every step that waits for it."""
    for name, before in dag.items():
        for predecessor in before:
            start, end = places[predecessor], places[name]
            x1, x2 = _left(start) + BOX_WIDTH, _left(end)
            y1, y2 = _top(start, pitch) + BOX_HEIGHT // 2, _top(end, pitch) + BOX_HEIGHT // 2
            yield (
                f'<line class="diagram-arrow diagram-forward" x1="{x1}" y1="{y1}"'
                f' x2="{x2 - ARROW}" y2="{y2}"'
                f' data-from="{escape(predecessor)}" data-to="{escape(name)}"/>'
            )
            yield _arrowhead(x2, y2, "right", "diagram-forward")


def _undo_arrows(
    steps: Sequence[Step], dag: graph.Graph, places: Mapping[str, Place], pitch: int
) -> Iterable[str]:
    """Yield the arrows from each compensation to those that run after it: a step is undone
    once every step that waited for it is undone (the nearest ones with a compensation)."""
    undone = {step.name for step in steps if step.compensation}
    following = graph.successors(dag)
    for earlier in (step.name for step in steps if step.compensation):
        for later in sorted(_nearest_undone(earlier, following, undone), key=list(dag).index):
            start, end = places[later], places[earlier]
            x1, x2 = _left(start) + 10, _left(end) + BOX_WIDTH - 10
            y1 = _top(start, pitch) + BOX_HEIGHT + UNDO_DROP + UNDO_HEIGHT // 2
            y2 = _top(end, pitch) + BOX_HEIGHT + UNDO_DROP + UNDO_HEIGHT // 2
            yield (
                f'<line class="diagram-arrow diagram-backward" x1="{x1}" y1="{y1}"'
                f' x2="{x2 + ARROW}" y2="{y2}"'
                f' data-from="{escape(later)}" data-to="{escape(earlier)}"/>'
            )
            yield _arrowhead(x2, y2, "left", "diagram-backward")


def _nearest_undone(name: str, following: graph.Graph, undone: set[str]) -> set[str]:
    """Return the steps with a compensation that follow `name` with none of those between."""
    nearest: set[str] = set()
    seen: set[str] = set()
    stack = list(following.get(name, ()))
    while stack:
        step = stack.pop()
        if step in seen:
            continue
        seen.add(step)
        if step in undone:
            nearest.add(step)
        else:
            stack.extend(following.get(step, ()))
    return nearest


def _arrowhead(x: int, y: int, pointing: str, kind: str) -> str:
    """Return a small triangle whose tip is at (x, y); drawn, not a <marker>, so ids never clash."""
    corners: dict[str, list[tuple[float, float]]] = {
        "right": [(x, y), (x - ARROW, y - ARROW / 2), (x - ARROW, y + ARROW / 2)],
        "left": [(x, y), (x + ARROW, y - ARROW / 2), (x + ARROW, y + ARROW / 2)],
        "down": [(x, y), (x - ARROW / 2, y - ARROW), (x + ARROW / 2, y - ARROW)],
    }
    coordinates = " ".join(f"{px:g},{py:g}" for px, py in corners[pointing])
    return f'<polygon class="diagram-arrowhead {kind}" points="{coordinates}"/>'
