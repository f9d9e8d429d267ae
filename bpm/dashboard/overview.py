"""The overview page: what is stuck, what happened lately, the counts, the workers and queues."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from bpm import answers, clock, totals
from bpm.dashboard import causes, saved_views, statistics, trend_charts, trends
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.fragment import render_page
from bpm.dashboard.queues import queue_report
from bpm.models import SagaStatus

# The stuck list shows this many, oldest first; the counts table says how many there are.
STUCK_SHOWN = 50


@dashboard_view
def overview(request: HttpRequest) -> HttpResponse:
    """Render the overview, or only its live region when htmx polls for it."""
    now = clock.now()
    counts = totals.counts_by("name")
    summed = statistics.status_totals(counts)
    hours, rates = trends.hourly_outcomes(now), trends.step_failure_rates(now)
    context = page_context(
        request,
        "Sagas overview",
        tab="overview",
        now=now,
        statuses=SagaStatus.choices,
        stuck=statistics.stuck_sagas(STUCK_SHOWN),
        stuck_groups=causes.stuck_groups(),
        stuck_total=dict(summed.counts)[SagaStatus.STUCK],
        activity=statistics.recent_activity(now),
        rows=statistics.status_rows(counts, param="definition"),
        totals=summed,
        rq=queue_report(),
        saved_views=saved_views.counted(request.user),
        trend_hours=hours,
        trend_rates=rates,
        trend_outcomes_svg=trend_charts.render_outcomes(hours),
        trend_failures_svg=trend_charts.render_failure_rates(rates),
        tasks=answers.task_counts(request.user),
    )
    return render_page(request, "dashboard/overview.html", "dashboard/overview_live.html", context)
