"""The timeline's geometry, pure: compressed gaps, the axis, bar stacking, label placement."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpm.dashboard import timeline_layout as layout

WIDTH = 720.0
seconds = st.floats(min_value=0, max_value=10_000, allow_nan=False)
spans = st.lists(st.tuples(seconds, seconds), max_size=12)


@given(spans, st.floats(min_value=0.001, max_value=20_000))
def test_segments_cover_the_whole_range_in_order_without_overlap(active, total):
    cut = layout.segments(active, total)
    assert cut[0].start == 0
    assert cut[-1].end == pytest.approx(total)
    for before, after in itertools.pairwise(cut):
        assert before.end == pytest.approx(after.start)
        assert before.end >= before.start


@given(spans, st.floats(min_value=0.001, max_value=20_000))
def test_only_idle_gaps_longer_than_all_active_time_are_compressed(active, total):
    merged = [(max(a, 0), min(b, total)) for a, b in layout.merge(active) if a <= total]
    busy = sum(b - a for a, b in merged)
    for segment in layout.segments(active, total):
        runs_inside = any(a < segment.end and b > segment.start for a, b in merged)
        if segment.compressed:
            assert not runs_inside
            assert busy > 0 and segment.seconds > busy
        elif not runs_inside and busy > 0:
            assert segment.seconds <= busy


@given(spans, st.floats(min_value=0.001, max_value=20_000), st.lists(seconds, max_size=20))
def test_the_axis_is_monotonic_and_stays_on_the_plot(active, total, moments):
    axis = layout.Axis(layout.segments(active, total), WIDTH)
    xs = [axis.x(moment) for moment in sorted(moments)]
    assert all(0 <= x <= WIDTH for x in xs)
    assert xs == sorted(xs)
    assert axis.x(0) == 0
    assert axis.x(total) == pytest.approx(WIDTH, abs=1e-6)


def test_a_long_backoff_between_millisecond_attempts_becomes_a_break():
    # Two 5 ms attempts 60 s apart: the minute is drawn as one break, the attempts fill the rest.
    cut = layout.segments([(0, 0.005), (60, 60.005)], 60.005)
    assert [s.compressed for s in cut] == [False, True, False]
    axis = layout.Axis(cut, WIDTH)
    assert axis.x(60) - axis.x(0.005) == pytest.approx(layout.BREAK_WIDTH)
    assert axis.x(0.005) - axis.x(0) > 300


def test_nothing_is_compressed_when_nothing_ran():
    assert layout.segments([], 30) == [layout.Segment(0, 30, False)]


@given(st.floats(-1000, 1000), st.floats(-1000, 1000))
def test_a_bar_is_never_narrower_than_the_minimum_and_stays_on_the_plot(x1, x2):
    start, end = sorted((min(max(x1, 0), WIDTH), min(max(x2, 0), WIDTH)))
    x, width = layout.bar(start, end, WIDTH)
    assert width >= layout.MIN_BAR
    assert x >= 0 and x + width <= WIDTH + 1e-9


@given(st.lists(st.tuples(st.floats(0, 700), st.floats(0, 50)), max_size=30))
def test_stacked_bars_sharing_a_row_never_overlap(bars):
    rows = layout.stack(bars)
    for i, (x1, w1) in enumerate(bars):
        for j, (x2, w2) in enumerate(bars):
            if i < j and rows[i] == rows[j]:
                assert x1 + w1 <= x2 or x2 + w2 <= x1


@given(
    st.lists(
        st.tuples(st.floats(0, WIDTH), st.text(min_size=1, max_size=30)), min_size=0, max_size=20
    )
)
def test_labels_on_the_same_row_never_collide(items):
    anchors = [anchor for anchor, _ in items]
    texts = [text for _, text in items]
    placed = layout.place_labels(anchors, texts, WIDTH)
    boxes = [
        (left, left + layout.label_width(text), row)
        for (left, row, _), text in zip(placed, texts, strict=True)
    ]
    for i, (l1, r1, row1) in enumerate(boxes):
        for j, (l2, r2, row2) in enumerate(boxes):
            if i < j and row1 == row2:
                assert r1 <= l2 or r2 <= l1


@given(st.text(max_size=80), st.floats(10, 400))
def test_a_fitted_text_fits(text, width):
    fitted = layout.fit(text, width)
    assert layout.label_width(fitted) <= max(width, layout.CHAR_WIDTH)
    assert fitted == text or fitted.endswith("…")
