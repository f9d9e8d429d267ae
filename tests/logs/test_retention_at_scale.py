"""Retention over 10^5 sagas on PostgreSQL: small index-backed batches that touch no active saga."""

from __future__ import annotations

import gzip
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from testkit import three_steps

from bpm import clock, retention
from bpm.models import (
    Direction,
    EventType,
    SagaEvent,
    SagaInstance,
    SagaStatus,
    StepRun,
)

pytestmark = [pytest.mark.django_db(transaction=True)]
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and EXPLAIN need PostgreSQL"
)

# 10^5 sagas, of which a fifth are old enough to go.
OLD, RECENT, RUNNING, STUCK = 20_000, 40_000, 20_000, 20_000
BATCH = 1_000
# Finding a batch (1), archiving it (sagas, runs, events, barriers: 4 per chunk of 500 = 8),
# then its own transaction: BEGIN, lock the sagas, one DELETE per table (events, barriers,
# waits, signals, runs, sagas: 6), COMMIT.
QUERIES_PER_BATCH = 18


def clone(model, template_pk, overrides: dict[str, str], source: str, params=()) -> None:
    """Insert copies of one row the ORM made: each column from `overrides` (SQL over `source`,
    where the template row is `t`) or else the template's. Fast, and any column the model
    gains later still gets the ORM's value."""
    table = model._meta.db_table
    columns = [field.column for field in model._meta.concrete_fields if field.column != "id"]
    if "id" in overrides:
        columns.insert(0, "id")
    values = ", ".join(overrides.get(column, f't."{column}"') for column in columns)
    names = ", ".join(f'"{column}"' for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {values} FROM {table} t {source} "
            "WHERE t.id = %s",
            [*params, template_pk],
        )


def seed() -> None:
    """Insert 10^5 sagas, an event each and a run for about one in five, in three statements."""
    definition = three_steps()
    step = definition.steps.get(name="a")
    now = clock.now()
    long_ago, lately = now - timedelta(days=40), now - timedelta(days=10)
    template = SagaInstance.objects.create(
        definition=definition, definition_name=definition.name, created_at=long_ago
    )
    run = StepRun.objects.create(saga=template, step=step, direction=Direction.FORWARD)
    event = SagaEvent.objects.create(saga=template, type=EventType.SAGA_STARTED, actor="seed")
    finished = "(ARRAY['COMPLETED', 'COMPENSATED', 'ABORTED'])[g %% 3 + 1]"
    clone(
        SagaInstance,
        template.pk,
        {
            "id": "gen_random_uuid()",
            "status": f"CASE WHEN g <= {OLD + RECENT} THEN {finished} "
            f"WHEN g <= {OLD + RECENT + RUNNING} THEN 'RUNNING' ELSE 'STUCK' END",
            "finished_at": f"CASE WHEN g <= {OLD} THEN %s::timestamptz "
            f"WHEN g <= {OLD + RECENT} THEN %s::timestamptz END",
        },
        f"CROSS JOIN generate_series(1, {OLD + RECENT + RUNNING + STUCK}) g",
        params=[long_ago, lately],
    )
    others = "JOIN bpm_sagainstance s ON s.id <> t.saga_id"
    clone(
        StepRun,
        run.pk,
        {"saga_id": "s.id", "status": "'SUCCEEDED'"},
        f"{others} AND hashtext(s.id::text) %% 5 = 0",
    )
    clone(SagaEvent, event.pk, {"saga_id": "s.id"}, others)
    SagaInstance.objects.filter(pk=template.pk).delete()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bpm_sagainstance")


@pytest.mark.slow
@postgres_only
def test_retention_over_100_000_sagas_goes_in_small_batches_and_spares_active_ones(
    settings, tmp_path
):
    settings.BPM_ARCHIVE_DIR = tmp_path
    settings.BPM_RETAIN_DAYS = 30
    settings.BPM_RETAIN_BATCH = BATCH
    seed()
    cutoff = clock.now() - timedelta(days=30)
    plan = str(
        SagaInstance.objects.filter(status__in=retention.FINISHED_STATUSES, finished_at__lt=cutoff)
        .order_by("finished_at")
        .values_list("id", flat=True)[:BATCH]
        .explain()
    )
    assert "saga_finished_at" in plan, plan

    batches = []
    while True:
        with CaptureQueriesContext(connection) as queries:
            archived, deleted = retention.archive_and_delete(cutoff, directory=tmp_path)
        if not archived:
            break
        statements = [query["sql"] for query in queries.captured_queries]
        assert (statements.count("BEGIN"), statements.count("COMMIT")) == (1, 1)
        batches.append((archived, deleted, len(statements)))
    assert len(batches) == OLD // BATCH
    assert all(archived == deleted <= BATCH for archived, deleted, _ in batches)
    assert {count for _, _, count in batches} == {QUERIES_PER_BATCH}, batches[:3]

    lines = 0
    for path in tmp_path.glob("sagas-*.jsonl.gz"):
        with gzip.open(path, "rt") as archive:
            lines += sum(1 for _ in archive)
    assert lines == OLD
    assert SagaInstance.objects.count() == RECENT + RUNNING + STUCK
    assert SagaInstance.objects.filter(status=SagaStatus.RUNNING).count() == RUNNING
    assert SagaInstance.objects.filter(status=SagaStatus.STUCK).count() == STUCK
    assert SagaEvent.objects.count() == RECENT + RUNNING + STUCK
    assert StepRun.objects.exists()
    assert not StepRun.objects.filter(saga__finished_at__lt=cutoff).exists()


@postgres_only
def test_a_saga_row_locked_by_someone_else_is_skipped_not_waited_for(settings, tmp_path):
    definition = three_steps()
    long_ago = clock.now() - timedelta(days=40)
    sagas = SagaInstance.objects.bulk_create(
        SagaInstance(
            definition=definition,
            definition_name=definition.name,
            status=SagaStatus.COMPLETED,
            finished_at=long_ago,
        )
        for _ in range(3)
    )
    locked, released = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with transaction.atomic():
            SagaInstance.objects.select_for_update().get(pk=sagas[0].pk)
            locked.set()
            released.wait(timeout=30)
        connections.close_all()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        deleted = retention.delete([s.pk for s in sagas], cutoff=clock.now())
    finally:
        released.set()
        holder.join()
    assert deleted == 2
    assert list(SagaInstance.objects.values_list("pk", flat=True)) == [sagas[0].pk]
