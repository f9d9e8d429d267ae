"""A saga definition drawn as an inline SVG: its steps, forward arrows and compensation arrows.

The SVG is built on the server from escaped text and styled by classes in dashboard.css, which
take their colours from the admin's CSS variables, so it follows the admin's light or dark theme.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from bpm.models import Direction, StepKind, StepStatus

STATES = {
    "done": "done",
    "running": "running",
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
    width = 2 * MARGIN + max(len(steps), 1) * (BOX_WIDTH + GAP) - GAP
    height = 2 * MARGIN + BOX_HEIGHT + (UNDO_DROP + UNDO_HEIGHT if has_undo else 0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="saga-diagram" role="img"'
        f' width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(_summary(steps))}</title>",
        *_forward_arrows(len(steps)),
        *_undo_arrows(steps),
    ]
    for index, step in enumerate(steps):
        state = (states or {}).get(step.name, "")
        parts.extend(_step_box(index, step, state, (attempts or {}).get(step.name)))
        if step.compensation:
            parts.extend(_undo_box(index, step, state))
    parts.append("</svg>")
    # Every text above went through escape().
    return mark_safe("".join(parts))


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


def _summary(steps: Sequence[Step]) -> str:
    return "Saga steps: " + " → ".join(step.name for step in steps)


def _left(index: int) -> int:
    return MARGIN + index * (BOX_WIDTH + GAP)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _step_box(index: int, step: Step, state: str, attempt: int | None = None) -> Iterable[str]:
    x, y = _left(index), MARGIN
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


def _undo_box(index: int, step: Step, state: str) -> Iterable[str]:
    x, y = _left(index), MARGIN + BOX_HEIGHT + UNDO_DROP
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
    top, bottom = MARGIN + BOX_HEIGHT, y
    yield (
        f'<line class="diagram-arrow diagram-undo-link" x1="{mid}" y1="{top}" x2="{mid}"'
        f' y2="{bottom - ARROW}"/>'
    )
    yield _arrowhead(mid, bottom, "down", "diagram-undo-link")


def _forward_arrows(count: int) -> Iterable[str]:
    y = MARGIN + BOX_HEIGHT // 2
    for index in range(count - 1):
        start, end = _left(index) + BOX_WIDTH, _left(index + 1)
        yield (
            f'<line class="diagram-arrow diagram-forward" x1="{start}" y1="{y}"'
            f' x2="{end - ARROW}" y2="{y}"/>'
        )
        yield _arrowhead(end, y, "right", "diagram-forward")


def _undo_arrows(steps: Sequence[Step]) -> Iterable[str]:
    """Yield the arrows from each compensation back to the one before it (newest first)."""
    y = MARGIN + BOX_HEIGHT + UNDO_DROP + UNDO_HEIGHT // 2
    undone = [index for index, step in enumerate(steps) if step.compensation]
    for earlier, later in itertools.pairwise(undone):
        start, end = _left(later) + 10, _left(earlier) + BOX_WIDTH - 10
        yield (
            f'<line class="diagram-arrow diagram-backward" x1="{start}" y1="{y}"'
            f' x2="{end + ARROW}" y2="{y}"/>'
        )
        yield _arrowhead(end, y, "left", "diagram-backward")


def _arrowhead(x: int, y: int, pointing: str, kind: str) -> str:
    """Return a small triangle whose tip is at (x, y); drawn, not a <marker>, so ids never clash."""
    corners: dict[str, list[tuple[float, float]]] = {
        "right": [(x, y), (x - ARROW, y - ARROW / 2), (x - ARROW, y + ARROW / 2)],
        "left": [(x, y), (x + ARROW, y - ARROW / 2), (x + ARROW, y + ARROW / 2)],
        "down": [(x, y), (x - ARROW / 2, y - ARROW), (x + ARROW / 2, y - ARROW)],
    }
    coordinates = " ".join(f"{px:g},{py:g}" for px, py in corners[pointing])
    return f'<polygon class="diagram-arrowhead {kind}" points="{coordinates}"/>'
