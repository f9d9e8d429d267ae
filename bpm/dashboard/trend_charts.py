"""The trends drawn as inline SVG, like the timeline: titled, described, themed by CSS classes.

Pure: it draws the numbers it is given. Each chart has a table with the same numbers next to it
(templates/dashboard/_trends.html) for screen readers and for reading exact values.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from bpm.dashboard.trends import SERIES, Hour, StepRate

WIDTH = 720
HEIGHT = 200
LEFT = 40
RIGHT = 10
TOP = 24
BOTTOM = 28
LABELS = {"STUCK": "stuck", "COMPLETED": "completed", "COMPENSATED": "compensated"}

BAR_ROW = 22
RATE_LABEL_WIDTH = 280
RATE_PLOT = 360


def render_outcomes(hours: Sequence[Hour]) -> SafeString:
    """Return stuck, completed and compensated per hour as grouped bars in an <svg>."""
    highest = max((max(hour.counts.values()) for hour in hours), default=0)
    top = _nice(highest)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(hours), 1)
    bar = (slot - 4) / len(SERIES)
    totals = {status: sum(hour.counts[status] for hour in hours) for status in SERIES}
    summary = ", ".join(f"{totals[status]} {LABELS[status]}" for status in SERIES)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart trend-outcomes" role="img"'
        f' aria-labelledby="trend-outcomes-title trend-outcomes-desc"'
        f' width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">',
        '<title id="trend-outcomes-title">Sagas per hour over the last 24 hours</title>',
        f'<desc id="trend-outcomes-desc">In the last 24 hours: {escape(summary)}.</desc>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="trend-grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="trend-axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{top * fraction:g}</text>"
        )
    for index, hour in enumerate(hours):
        x0 = LEFT + index * slot + 2
        label = hour.start.strftime("%H:00")
        for offset, status in enumerate(SERIES):
            count = hour.counts[status]
            height = plot_h * count / top if top else 0
            parts.append(
                f'<rect class="trend-bar series-{status.lower()}" data-hour="{label}"'
                f' data-series="{status}" data-count="{count}"'
                f' x="{x0 + offset * bar:.1f}" y="{TOP + plot_h - height:.1f}"'
                f' width="{max(bar - 1, 1):.1f}" height="{height:.1f}">'
                f"<title>{escape(f'{label} UTC: {count} {LABELS[status]}')}</title></rect>"
            )
        if index % 3 == 0:
            parts.append(
                f'<text class="trend-axis" x="{x0 + slot / 2 - 2:.1f}" y="{HEIGHT - 10}"'
                f' text-anchor="middle">{label}</text>'
            )
    parts.extend(_legend())
    parts.append("</svg>")
    # Every text above went through escape() or is a number.
    return mark_safe("".join(parts))


def _legend() -> list[str]:
    parts = []
    for index, status in enumerate(SERIES):
        x = LEFT + index * 110
        parts.append(
            f'<rect class="trend-bar series-{status.lower()}" x="{x}" y="6" width="10"'
            f' height="10"/><text class="trend-legend" x="{x + 14}" y="15">{LABELS[status]}</text>'
        )
    return parts


def render_failure_rates(rates: Sequence[StepRate]) -> SafeString:
    """Return each step's failure rate as a horizontal bar in an <svg>, the worst first."""
    height = TOP + max(len(rates), 1) * BAR_ROW + 8
    width = RATE_LABEL_WIDTH + RATE_PLOT + 120
    worst = rates[0] if rates else None
    summary = (
        f"The highest failure rate is {worst.step} of {worst.definition}: "
        f"{worst.failures} of {worst.attempts} attempts failed."
        if worst
        else "No step ran in the last 24 hours."
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart trend-failures" role="img"'
        f' aria-labelledby="trend-failures-title trend-failures-desc"'
        f' width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        '<title id="trend-failures-title">Step failure rates over the last 24 hours</title>',
        f'<desc id="trend-failures-desc">{escape(summary)}</desc>',
    ]
    for index, rate in enumerate(rates):
        y = TOP + index * BAR_ROW
        name = f"{rate.definition} · {rate.step}"
        text = f"{rate.rate:.0%} ({rate.failures}/{rate.attempts})"
        tooltip = f"{name}: {rate.failures} of {rate.attempts} attempts failed"
        parts.append(
            f'<g class="trend-rate" data-step="{escape(rate.step)}"'
            f' data-definition="{escape(rate.definition)}">'
            f"<title>{escape(tooltip)}</title>"
            f'<text class="trend-label" x="{RATE_LABEL_WIDTH - 8}" y="{y + 14}"'
            f' text-anchor="end">{escape(_clip(name))}</text>'
            f'<rect class="trend-track" x="{RATE_LABEL_WIDTH}" y="{y + 3}" width="{RATE_PLOT}"'
            f' height="{BAR_ROW - 8}"/>'
            f'<rect class="trend-bar series-failures" x="{RATE_LABEL_WIDTH}" y="{y + 3}"'
            f' width="{RATE_PLOT * rate.rate:.1f}" height="{BAR_ROW - 8}"/>'
            f'<text class="trend-value" x="{RATE_LABEL_WIDTH + RATE_PLOT + 6}" y="{y + 14}">'
            f"{escape(text)}</text></g>"
        )
    parts.append("</svg>")
    # Every text above went through escape() or is a number.
    return mark_safe("".join(parts))


def _clip(text: str, most: int = 44) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _nice(value: int) -> int:
    """Return the top of the axis: 1, 2 or 5 times a power of 10, at least `value`."""
    if value <= 0:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10
