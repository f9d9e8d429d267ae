"""The timeline's geometry, pure: which idle gaps to compress, where a moment lands on the plot,
how overlapping bars stack and where labels go so that none collide. No Django, no I/O.

Times are seconds from the start of the plotted range; x coordinates are pixels from the plot's
left edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A compressed gap takes this many pixels, whatever its length.
BREAK_WIDTH = 28.0
# The narrowest bar: a millisecond attempt next to minutes of backoff stays visible and clickable.
MIN_BAR = 4.0
# An estimate of a label's width per character at the timeline's font size (11-12 px).
CHAR_WIDTH = 6.6
# Breathing room between two labels on one row.
LABEL_GAP = 6.0


@dataclass(frozen=True)
class Segment:
    """A piece of the time axis; a compressed one is an idle gap drawn as a break."""

    start: float
    end: float
    compressed: bool

    @property
    def seconds(self) -> float:
        return self.end - self.start


def merge(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the union of the spans as sorted, disjoint spans (a span's end is >= its start)."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted((min(a, b), max(a, b)) for a, b in spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def segments(active: Sequence[tuple[float, float]], total: float) -> list[Segment]:
    """Cut [0, total] into segments; an idle gap longer than all active time together is
    compressed.

    "Active" is where something runs (attempts); the rest is idle (backoffs, waiting). When
    nothing is active the axis is one plain segment.
    """
    total = max(total, 0.0)
    busy = [(max(a, 0.0), min(b, total)) for a, b in merge(active) if b >= 0 and a <= total]
    busy_seconds = sum(b - a for a, b in busy)
    cut: list[Segment] = []
    cursor = 0.0
    for start, end in busy:
        if start > cursor:
            cut.append(_idle(cursor, start, busy_seconds))
        cut.append(Segment(max(cursor, start), end, False))
        cursor = max(cursor, end)
    if cursor < total or not cut:
        cut.append(_idle(cursor, total, busy_seconds))
    return [segment for segment in cut if segment.seconds > 0] or [Segment(0.0, total, False)]


def _idle(start: float, end: float, busy_seconds: float) -> Segment:
    return Segment(start, end, busy_seconds > 0 and end - start > busy_seconds)


class Axis:
    """Maps seconds to x over segments: breaks take BREAK_WIDTH, the rest shares the width."""

    def __init__(self, cut: Sequence[Segment], width: float) -> None:
        self.segments = list(cut)
        self.width = width
        breaks = sum(1 for s in self.segments if s.compressed)
        break_width = min(BREAK_WIDTH, width / (2 * max(breaks, 1)))
        self.break_width = break_width if breaks else 0.0
        plain = sum(s.seconds for s in self.segments if not s.compressed)
        room = width - breaks * self.break_width
        self.per_second = room / plain if plain > 0 else 0.0
        if plain <= 0 and not breaks:
            self.per_second = width / max(sum(s.seconds for s in self.segments), 1e-9)
        self.lefts: list[float] = []
        x = 0.0
        for segment in self.segments:
            self.lefts.append(x)
            x += self.segment_width(segment)

    def segment_width(self, segment: Segment) -> float:
        return self.break_width if segment.compressed else segment.seconds * self.per_second

    def x(self, seconds: float) -> float:
        """Return where a moment lands, clamped to the plot."""
        if not self.segments or seconds <= self.segments[0].start:
            return 0.0
        for left, segment in zip(self.lefts, self.segments, strict=True):
            if seconds <= segment.end:
                share = (seconds - segment.start) / segment.seconds if segment.seconds else 0.0
                return min(left + share * self.segment_width(segment), self.width)
        return self.width


def bar(x1: float, x2: float, plot_width: float) -> tuple[float, float]:
    """Return a bar's (x, width): at least MIN_BAR wide, moved left to stay on the plot."""
    width = max(x2 - x1, MIN_BAR)
    x = min(x1, plot_width - width)
    return max(x, 0.0), width


def stack(spans: Sequence[tuple[float, float]]) -> list[int]:
    """Return a row for each (x, width), so that bars sharing a row never overlap (first fit).

    Bars that overlap in a lane (parallel attempts, or a minimum width reaching the next
    attempt) go on rows of their own, so each keeps a part of its own to hover and click.
    """
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], i))
    row_ends: list[float] = []
    rows = [0] * len(spans)
    for index in order:
        x, width = spans[index]
        for row, end in enumerate(row_ends):
            if x >= end:
                rows[index], row_ends[row] = row, x + width
                break
        else:
            rows[index] = len(row_ends)
            row_ends.append(x + width)
    return rows


def label_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def place_labels(
    anchors: Sequence[float], texts: Sequence[str], plot_width: float
) -> list[tuple[float, int, str]]:
    """Return (left x, row, anchor) for each label at its anchor x, on rows where none collide.

    A label starts right of its anchor, or ends left of it near the plot's right edge.
    """
    lefts = []
    for anchor, text in zip(anchors, texts, strict=True):
        width = label_width(text)
        right_side = anchor + 3 + width <= plot_width
        lefts.append((anchor + 3, "start") if right_side else (anchor - 3 - width, "end"))
    placed: list[tuple[float, int, str]] = [(0.0, 0, "start")] * len(lefts)
    row_ends: list[float] = []
    for index in sorted(range(len(lefts)), key=lambda i: (lefts[i][0], i)):
        left, side = lefts[index]
        right = left + label_width(texts[index]) + LABEL_GAP
        row = next((r for r, end in enumerate(row_ends) if left >= end), len(row_ends))
        if row == len(row_ends):
            row_ends.append(right)
        else:
            row_ends[row] = right
        placed[index] = (left, row, side)
    return placed


def fit(text: str, width: float) -> str:
    """Return the text cut with an ellipsis so that it fits in `width` pixels."""
    most = max(int(width / CHAR_WIDTH), 1)
    return text if len(text) <= most else text[: most - 1] + "…"
