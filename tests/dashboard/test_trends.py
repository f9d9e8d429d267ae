"""The overview's trends: outcomes per hour and step failure rates, as SVG with a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from saga_rows import make_sagas
from testkit import drain, three_steps

from bpm import clock, services
from bpm.dashboard import trend_charts, trends
from bpm.models import SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 3, 4, 15, 40, tzinfo=UTC)


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def test_outcomes_are_counted_in_the_hour_they_happened(the_world):
    definition = three_steps()
    finished = {"updated_at": hours_ago(1), "finished_at": hours_ago(2)}
    make_sagas(definition, 3, status=SagaStatus.COMPLETED, start=hours_ago(3), **finished)
    make_sagas(definition, 2, status=SagaStatus.COMPENSATED, start=hours_ago(3), **finished)
    make_sagas(definition, 4, status=SagaStatus.STUCK, start=hours_ago(0.1), spacing=timedelta(0))
    # More than a day ago, and still running: not in any hour.
    make_sagas(definition, 5, status=SagaStatus.COMPLETED, start=hours_ago(30))
    make_sagas(definition, 6, status=SagaStatus.RUNNING, start=hours_ago(1))
    hours = trends.hourly_outcomes(NOW)
    assert len(hours) == 24
    assert hours[-1].start == datetime(2026, 3, 4, 15, tzinfo=UTC)
    by_hour = {hour.start.hour: hour.counts for hour in hours}
    assert by_hour[13] == {"STUCK": 0, "COMPLETED": 3, "COMPENSATED": 2}
    assert by_hour[15] == {"STUCK": 4, "COMPLETED": 0, "COMPENSATED": 0}
    assert sum(sum(hour.counts.values()) for hour in hours) == 9


def test_a_steps_failure_rate_is_its_failed_attempts_over_its_finished_attempts(the_world):
    definition = three_steps()
    the_world.will("b", "fault", "fault")
    for _ in range(2):
        services.saga_start(definition=definition.name, input={}, actor="test")
    drain()
    rates = {rate.step: rate for rate in trends.step_failure_rates(clock.now())}
    assert (rates["b"].failures, rates["b"].attempts) == (2, 4)
    assert rates["b"].rate == 0.5
    assert (rates["a"].failures, rates["a"].attempts) == (0, 2)
    assert next(iter(rates)) == "b"
    # A day later the runs are out of the window.
    assert trends.step_failure_rates(clock.now() + timedelta(hours=25)) == []


def test_the_charts_are_titled_described_and_escape_names():
    hours = [
        trends.Hour(start=hours_ago(h), counts={"STUCK": h, "COMPLETED": 2, "COMPENSATED": 0})
        for h in range(24)
    ]
    outcomes = trend_charts.render_outcomes(hours)
    assert "<title id=\"trend-outcomes-title\">Sagas per hour" in outcomes
    assert "276 stuck, 48 completed, 0 compensated" in outcomes
    assert outcomes.count('class="trend-bar series-stuck"') == 24 + 1  # and the legend's
    rates = [trends.StepRate("<script>", "send&mail", 4, 1)]
    failures = trend_charts.render_failure_rates(rates)
    assert "<script>" not in failures
    assert "&lt;script&gt; · send&amp;mail" in failures
    assert "25% (1/4)" in failures
    assert "No step ran" in trend_charts.render_failure_rates([])


def test_the_overview_shows_the_trends_to_a_viewer(viewer, the_world):
    make_sagas(three_steps(), 2, status=SagaStatus.STUCK)
    body = viewer.get(reverse("dashboard:overview")).content.decode()
    assert 'class="trend-chart trend-outcomes"' in body
    assert 'class="trend-chart trend-failures"' in body
    assert "Sagas per hour as a table" in body
