"""Counts of sagas for the dashboard, none of which grows with the table (see bpm.totals)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q

from bpm.models import SagaInstance, SagaStatus

# The periods the overview reports activity for, as (label, length).
WINDOWS = (("last hour", timedelta(hours=1)), ("last day", timedelta(days=1)))


@dataclass(frozen=True)
class StatusRow:
    """One row of a status table: a key, its count per status, the total, and `filters`: the
    saga list's query parameters that select the row's sagas."""

    key: Any
    counts: list[tuple[str, int]]
    total: int
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def query(self) -> str:
        """Return the filters as a query string for the saga list."""
        return urlencode(self.filters)


@dataclass(frozen=True)
class Activity:
    """How many sagas started, completed, compensated and got stuck within one period."""

    label: str
    since: datetime
    started: int
    completed: int
    compensated: int
    stuck: int


def status_row(key: Any, by_status: dict[str, int], **filters: Any) -> StatusRow:
    """Return one row: a cell for every status in their usual order, and the total."""
    counts = [(status, by_status.get(status, 0)) for status in SagaStatus.values]
    return StatusRow(
        key=key, counts=counts, total=sum(count for _, count in counts), filters=filters
    )


def status_rows(
    counts: dict[Any, dict[str, int]], *, param: str, reverse: bool = False, **filters: Any
) -> list[StatusRow]:
    """Return a row per key, sorted; each row's sagas are those `filters` and `param`=key select."""
    return [
        status_row(key, by_status, **filters, **{param: key})
        for key, by_status in sorted(counts.items(), reverse=reverse)
    ]


def status_totals(counts: dict[Any, dict[str, int]], **filters: Any) -> StatusRow:
    """Return the sum of all rows, per status."""
    summed: Counter[str] = Counter()
    for by_status in counts.values():
        summed.update(by_status)
    return status_row(None, dict(summed), **filters)


def recent_activity(now: datetime) -> list[Activity]:
    """Return, for each period of WINDOWS, the sagas that started or ended in it.

    "Completed", "compensated" and "stuck" count the sagas in that status now whose last change
    falls in the period. A saga's updated_at is never earlier than its creation or its finish, so
    one range on updated_at (indexed) bounds every count.
    """
    periods = [(label, now - length) for label, length in WINDOWS]
    aggregates: dict[str, Count] = {}
    for index, (_, since) in enumerate(periods):
        changed = Q(updated_at__gte=since)
        aggregates[f"started{index}"] = Count("pk", filter=Q(created_at__gte=since))
        aggregates[f"completed{index}"] = Count(
            "pk", filter=changed & Q(status=SagaStatus.COMPLETED, finished_at__gte=since)
        )
        aggregates[f"compensated{index}"] = Count(
            "pk", filter=changed & Q(status=SagaStatus.COMPENSATED, finished_at__gte=since)
        )
        aggregates[f"stuck{index}"] = Count("pk", filter=changed & Q(status=SagaStatus.STUCK))
    earliest = min(since for _, since in periods)
    totals = SagaInstance.objects.filter(updated_at__gte=earliest).aggregate(**aggregates)
    return [
        Activity(
            label=label,
            since=since,
            started=totals[f"started{index}"],
            completed=totals[f"completed{index}"],
            compensated=totals[f"compensated{index}"],
            stuck=totals[f"stuck{index}"],
        )
        for index, (label, since) in enumerate(periods)
    ]


def stuck_sagas(limit: int) -> list[SagaInstance]:
    """Return the stuck sagas that have waited longest (oldest last change first)."""
    return list(
        SagaInstance.objects.filter(status=SagaStatus.STUCK)
        .select_related("definition", "assignee")
        .order_by("updated_at", "id")[:limit]
    )
