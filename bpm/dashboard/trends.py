"""The overview's trends over the last 24 hours: outcomes per hour and step failure rates.

Two queries, each bounded by the `saga_updated` index to the sagas changed in the last day (as
the overview's recent activity is), so they cost what the day's traffic costs, never what the
table holds. The finished-saga rollup (bpm.totals) keeps totals without time, so it cannot say
which hour a saga finished in; these read the rows.

"Stuck" counts the sagas stuck now, by the hour they got stuck (a stuck saga's last change);
completed and compensated count by the hour they finished. A step's failure rate is its failed
attempts over its finished attempts, for runs made in the last day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, TruncHour

from bpm.models import Direction, SagaInstance, SagaStatus, StepRun, StepStatus

HOURS = 24
SERIES = (SagaStatus.STUCK, SagaStatus.COMPLETED, SagaStatus.COMPENSATED)
# The steps shown, the worst first: a chart of a hundred bars helps nobody.
STEPS_SHOWN = 12


@dataclass(frozen=True)
class Hour:
    start: datetime
    counts: dict[str, int]


@dataclass(frozen=True)
class StepRate:
    definition: str
    step: str
    attempts: int
    failures: int

    @property
    def rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0


def hour_slots(now: datetime) -> list[datetime]:
    """Return the starts of the last HOURS hours (UTC), the current hour last."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=back) for back in range(HOURS - 1, -1, -1)]


def hourly_outcomes(now: datetime) -> list[Hour]:
    """Return, per hour of the last day, how many sagas got stuck, completed and compensated."""
    slots = hour_slots(now)
    since = slots[0]
    rows = (
        SagaInstance.objects.filter(updated_at__gte=since, status__in=SERIES)
        .annotate(hour=TruncHour(Coalesce("finished_at", "updated_at"), tzinfo=UTC))
        .order_by()
        .values_list("status", "hour")
        .annotate(number=Count("pk"))
    )
    found: dict[tuple[str, datetime], int] = {}
    for status, hour, number in rows:
        found[(status, hour)] = found.get((status, hour), 0) + number
    return [
        Hour(start=slot, counts={status: found.get((status, slot), 0) for status in SERIES})
        for slot in slots
    ]


def step_failure_rates(now: datetime) -> list[StepRate]:
    """Return the forward steps run in the last day with their failures, highest rate first."""
    since = now - timedelta(hours=HOURS)
    rows = (
        StepRun.objects.filter(
            saga__updated_at__gte=since, created_at__gte=since, direction=Direction.FORWARD
        )
        .order_by()
        .values_list("saga__definition_name", "step__name")
        .annotate(
            attempts=Coalesce(Sum("attempts"), 0),
            succeeded=Count("pk", filter=Q(status=StepStatus.SUCCEEDED)),
            running=Count("pk", filter=Q(status=StepStatus.RUNNING)),
        )
    )
    rates = []
    for definition, step, attempts, succeeded, running in rows:
        # A running attempt has not failed (yet); a succeeded run's last attempt did not fail.
        finished = max(attempts - running, 0)
        rates.append(StepRate(definition, step, finished, max(finished - succeeded, 0)))
    rates = [rate for rate in rates if rate.attempts]
    rates.sort(key=lambda rate: (-rate.rate, -rate.failures, rate.definition, rate.step))
    return rates[:STEPS_SHOWN]
