"""How many sagas there are per definition version and status, in time that does not grow with
the table.

Unfinished sagas (RUNNING, COMPENSATING, STUCK) are few and change status: they are counted live,
from a partial index that holds only them (`saga_unfinished_status`, read without the table).

Finished sagas (COMPLETED, COMPENSATED, ABORTED) are most of the table and never change status
again: a rollup counts them. `roll_up` (run by every sweep) adds the sagas that finished before a
watermark to FinishedCount and moves the watermark; the sagas that finished since are counted live
through the `saga_updated` index (a saga's updated_at is never earlier than its finished_at). The
three parts are read in one statement, so one snapshot, and only if the rollup is still at the
watermark the live part counted from (else they are read again): a sweep that moves the watermark
meanwhile cannot make a saga counted twice or not at all.

The watermark only passes a moment once no transaction can still commit a saga finished before
it: it stays LAG behind the clock, and on PostgreSQL behind the start of the oldest transaction in
progress (a finish is stamped inside its transaction, after it began). So the totals are exact:
tests/bpm/test_totals.py checks them against COUNT(*).

Finished totals count every saga that ever finished, including sagas the retention purge deleted
since (and a restore adds none twice): they are the shop's history, not the table's row count,
and deleting rows can never make them wrong. The purge only deletes sagas finished days ago, long
behind the watermark; unfinished counts are always the rows present.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThan, Lookup

from bpm import clock
from bpm.models import FinishedCount, FinishedRollup, SagaDefinition, SagaInstance, SagaStatus

UNFINISHED = (SagaStatus.RUNNING, SagaStatus.COMPENSATING, SagaStatus.STUCK)
FINISHED = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.ABORTED)
# Headroom for clocks that differ between the hosts stamping finished_at, and on SQLite (which
# has no list of transactions in progress) for a finishing transaction's commit.
LAG = timedelta(seconds=60)
ROLLUP_ID = 1
# Before every saga: where the watermark is when nothing has been rolled up.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)

Counts = dict[int, dict[str, int]]
# Reads of the counts that find the watermark moved under them before giving up on the rollup.
ATTEMPTS = 5
# The status of the row that says the rollup was still at the watermark the counts assumed.
MARK = "rollup-at-watermark"


def counts_by_version() -> Counts:
    """Return {definition version id: {status: number of sagas}}, exact, in one statement.

    The one count selector: the dashboard's status tables and the `bpm_sagas` gauges use it.
    """
    for _ in range(ATTEMPTS):
        counts = _counts_through(_watermark())
        if counts is not None:
            return counts
    # The watermark kept moving (sweeps a few milliseconds apart): count from the beginning,
    # exact without the rollup and as slow as the table is long.
    return _count_everything()


def _watermark() -> datetime | None:
    return FinishedRollup.objects.filter(pk=ROLLUP_ID).values_list("through", flat=True).first()


def _counts_through(through: datetime | None) -> Counts | None:
    """Return the counts with the rollup at `through`, or None if a sweep has moved it since.

    The watermark is given as a value, not read in the statement: as a value the planner bounds
    the `saga_updated` range scan by it. The rollup's rows are read only if the rollup is still
    at that watermark (the statement's one snapshot says so, with the MARK row).
    """
    since = through or BEGINNING
    unfinished = _grouped(SagaInstance.objects.filter(status__in=UNFINISHED))
    recent = _grouped(_finished_between(since))
    counts_at: dict[str, Any]
    rollup_at: dict[str, Any]
    if through is None:
        counts_at, rollup_at = {"rollup__through__isnull": True}, {"through__isnull": True}
    else:
        counts_at, rollup_at = {"rollup__through": through}, {"through": through}
    rolled_up = (
        FinishedCount.objects.filter(rollup_id=ROLLUP_ID, **counts_at)
        .order_by()
        .values_list("definition_id", "status", "count")
    )
    mark = (
        FinishedRollup.objects.filter(pk=ROLLUP_ID, **rollup_at)
        .order_by()
        .values_list(Value(0), Value(MARK), Value(0))
    )
    counts: Counts = defaultdict(dict)
    marked = False
    for definition_id, status, number in unfinished.union(recent, rolled_up, mark, all=True):
        if status == MARK:
            marked = True
            continue
        by_status = counts[definition_id]
        by_status[status] = by_status.get(status, 0) + number
    if through is not None and not marked:
        return None
    return dict(counts)


def _count_everything() -> Counts:
    counts: Counts = defaultdict(dict)
    for definition_id, status, number in _grouped(SagaInstance.objects.all()):
        counts[definition_id][status] = number
    return dict(counts)


def counts_by(key: str, **filters: Any) -> dict[Any, dict[str, int]]:
    """Return {definition `key` ("name" or "version"): {status: count}} for the definition
    versions `filters` select (e.g. name="place_order"); versions without sagas are left out."""
    if key not in ("name", "version"):
        raise ValueError(f"counts are grouped by 'name' or 'version', not {key!r}")
    keys = dict(SagaDefinition.objects.filter(**filters).values_list("id", key))
    grouped: dict[Any, dict[str, int]] = defaultdict(dict)
    for definition_id, by_status in counts_by_version().items():
        if definition_id not in keys:
            continue
        row = grouped[keys[definition_id]]
        for status, number in by_status.items():
            row[status] = row.get(status, 0) + number
    return dict(grouped)


def roll_up() -> int:
    """Add the sagas that finished before a new watermark to the rollup; return how many.

    Several sweepers may run at once: the watermark row's lock lets one count at a time.
    """
    with transaction.atomic():
        rollup = FinishedRollup.objects.select_for_update().filter(pk=ROLLUP_ID).first()
        if rollup is None:
            # The row the migration made is gone (a flushed test database): start again.
            FinishedCount.objects.all().delete()
            rollup = FinishedRollup.objects.create(pk=ROLLUP_ID)
            rollup = FinishedRollup.objects.select_for_update().get(pk=ROLLUP_ID)
        through = safe_watermark()
        previous = rollup.through or BEGINNING
        if through <= previous:
            return 0
        finished = _finished_between(previous, through)
        added = 0
        for definition_id, status, number in _grouped(finished):
            updated = FinishedCount.objects.filter(
                rollup=rollup, definition_id=definition_id, status=status
            ).update(count=F("count") + number)
            if not updated:
                FinishedCount.objects.create(
                    rollup=rollup, definition_id=definition_id, status=status, count=number
                )
            added += number
        rollup.through = through
        rollup.save(update_fields=["through"])
        return added


def safe_watermark() -> datetime:
    """Return a moment before every finish a transaction in progress may still commit."""
    through = clock.now() - LAG
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT min(xact_start) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            (oldest,) = cursor.fetchone()
        if oldest is not None:
            through = min(through, oldest - LAG)
    return through


def _finished_between(since: datetime, until: datetime | None = None) -> QuerySet[SagaInstance]:
    """Return the sagas that finished at or after `since` (and before `until`).

    A saga finished at its finished_at, which every finishing transition stamps; a row without one
    (written by hand) counts as finished at its last change. Either is at most its updated_at, the
    column the `saga_updated` index bounds the range with.
    """
    finished = Coalesce("finished_at", "updated_at")
    bounds: list[Lookup[Any]] = [GreaterThanOrEqual(finished, since)]
    if until is not None:
        bounds.append(LessThan(finished, until))
    return SagaInstance.objects.filter(*bounds, status__in=FINISHED, updated_at__gte=since)


def _grouped(sagas: QuerySet[SagaInstance]) -> QuerySet[Any]:
    return sagas.order_by().values_list("definition_id", "status").annotate(number=Count("*"))


def forget_finish(saga: SagaInstance, finished_at: datetime | None) -> None:
    """Take back a reopened saga's finish from the rollup, if the rollup counted it already.

    An operator's rerun sets a COMPLETED saga running again (bpm.engine.rerun_from); while the
    rollup's row is locked, a finish before the watermark is subtracted from the finished total,
    and one after it was only ever counted live (by status, which is no longer COMPLETED).
    """
    rollup = FinishedRollup.objects.select_for_update().filter(pk=ROLLUP_ID).first()
    finished = finished_at or saga.updated_at
    if rollup is None or rollup.through is None or finished >= rollup.through:
        return
    FinishedCount.objects.filter(
        rollup=rollup, definition_id=saga.definition_id, status=SagaStatus.COMPLETED
    ).update(count=F("count") - 1)
