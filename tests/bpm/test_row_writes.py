"""The engine writes back only the columns a step changed: nothing it changed may be missed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection, models, transaction
from testkit import declare, work

from bpm import clock, engine, services
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaInstance, StepRun
from bpm.states import StepStatus

pytestmark = pytest.mark.django_db(transaction=True)


def columns(row: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}


def stored(row: models.Model) -> dict[str, Any]:
    return columns(type(row)._default_manager.get(pk=row.pk))


def locked_first_run() -> tuple[StepRun, SagaInstance]:
    declare("local_2", Step("s0", "test.local", "test.local"), Step("s1", "test.local"))
    saga = services.saga_start(definition="local_2", input={"order": {"id": 1}}, actor="test")
    locked = engine._read_run_locking_saga(StepRun.objects.get(saga=saga).pk)
    assert locked is not None
    return locked


def test_every_change_to_a_locked_row_is_written_even_inside_its_json(the_world):
    with transaction.atomic():
        run, saga = locked_first_run()
        saga.input["order"]["id"] = 2  # changed in place, inside the dict the row was read with
        saga.context = {"s0": {"a": 1}}
        saga.business_key = "changed"
        run.attempts = 7
        run.output = {"b": 2}
        run.error_code = "E"
        engine._save(saga, run)
    assert stored(saga) == columns(saga)
    assert stored(run) == columns(run)
    assert stored(saga)["input"] == {"order": {"id": 2}}


def test_a_row_changed_nowhere_is_not_written_and_a_changed_one_only_in_its_changes(
    the_world, django_assert_num_queries
):
    with transaction.atomic():
        run, saga = locked_first_run()
        assert saga.changed_fields() == [] and run.changed_fields() == []
        run.attempts = 3
        assert [f.name for f in run.changed_fields() or []] == ["attempts"]
        with django_assert_num_queries(1) as queries:
            engine._save(saga, run)  # the run's attempts; the saga is unchanged, no event
    assert '"attempts" = ' in queries.captured_queries[0]["sql"]
    assert "status" not in queries.captured_queries[0]["sql"]
    assert stored(run)["attempts"] == 3


def test_a_row_saved_by_the_orm_meanwhile_writes_every_column(the_world):
    with transaction.atomic():
        _, saga = locked_first_run()
        saga.business_key = "by the orm"
        saga.save()
        saga.business_key = ""  # back to what the lock read, but not to what is stored
        engine._save(saga)
    assert stored(saga)["business_key"] == ""


def test_a_whole_saga_leaves_the_rows_the_engine_held_when_it_wrote_them(the_world):
    """After each saga row and run row the engine wrote, stored and held columns are the same."""
    declare("local_3", *(Step(f"s{i}", "test.local", "test.local") for i in range(3)))
    saga = services.saga_start(definition="local_3", input={"n": 1}, actor="test")
    held: dict[tuple[type[models.Model], Any], tuple[models.Model, dict[str, Any]]] = {}
    update_row = engine._update_row

    def remembering(row: models.Model, fields: Any = None) -> None:
        update_row(row, fields)
        held[(type(row), row.pk)] = (row, columns(row))

    engine._update_row = remembering  # type: ignore[assignment]
    try:
        work()
    finally:
        engine._update_row = update_row  # type: ignore[assignment]
    assert {run.status for run in StepRun.objects.filter(saga=saga)} == {StepStatus.SUCCEEDED}
    assert len(held) == 4  # the saga and its three runs
    for row, when_written in held.values():
        assert stored(row) == when_written


def test_the_engine_prepares_each_value_as_the_field_itself_does(the_world):
    with transaction.atomic():
        run, saga = locked_first_run()
        run.claim(actor="test", owner=uuid.uuid4(), lease_until=clock.now())
        logged = saga.unsaved_events[-1]
        event = logged.as_model()

        def generic(row: models.Model, add: bool) -> list[Any]:
            fields = row._meta.concrete_fields
            return [plain(f.get_db_prep_save(f.pre_save(row, add), connection)) for f in fields]

        for row, add in ((saga, False), (run, False), (event, True)):
            fields = row._meta.concrete_fields
            fast = [plain(value) for value in engine._row_values(row, fields, add=add)]
            assert fast == generic(row, add)
        # An event is written from the values it was logged with, without a model instance.
        columns = [f for f in event._meta.concrete_fields if not f.primary_key]
        fast = [plain(value) for value in engine._prepared(logged.columns(), columns)]
        assert fast == generic(event, True)[1:]


def plain(value: Any) -> Any:
    """A JSON value as adapted for PostgreSQL (psycopg's Jsonb), by the value it wraps."""
    return getattr(value, "obj", value)
