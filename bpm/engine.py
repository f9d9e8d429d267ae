"""Coordinates the rows of a saga inside transactions: start, claim, run, record, operate.

This module is the only writer of saga and step-run rows: the services (operator actions) and the
sweeper call its functions, and hold no lock of their own.

The claim and fence protocol
----------------------------
Every write to a saga's rows happens with the SagaInstance row locked (`select_for_update`), so
the saga row is the single point of serialisation between workers, the sweeper and operators.
A worker takes that lock and reads the run it was rung for in one query (`_lock_run`).

A doorbell (RQ job) carries a StepRun id and its fence token. Claiming checks, under the lock,
that the run is PENDING, due, and still has that token; a duplicated or stale doorbell is refused
there. The claim marks the run RUNNING with a lease (a fresh owner id and an expiry derived from
the step's timeout). The outcome is recorded only if the run is still RUNNING under that owner:
otherwise the sweeper has meanwhile expired the lease and the result is dropped with an event.

Transactional handlers (this database only) are claimed, run and recorded in one transaction,
behind the barrier, so their effect happens exactly once and each step costs one commit; the run
row is written once, already finished. When such a handler raises, the whole transaction rolls
back (its writes and the barrier row with it: no savepoint is needed) and a second transaction
claims the run again under the lock and records the fault.
Other handlers run between two transactions and get at-least-once delivery: they must pass
`ctx.idempotency_key` to whatever they call.

What a worker keeps between transactions
----------------------------------------
A job reads a saga's runs once (`SagaRows`) and keeps them while it continues inline. The view is
only trusted while the saga row is the one this worker last wrote: every writer saves the saga
row (its `updated_at` moves), except a redrive, which changes only a PENDING run's token and is
caught by the claim's own check of that run. So a view whose `updated_at` differs from the locked
row is read again, and nothing goes stale.
"""

from __future__ import annotations

import logging
import random
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from bpm import (
    barrier,
    clock,
    definitions,
    dispatch,
    http_calls,
    log_context,
    metrics,
    planner,
    registry,
    timeout,
    totals,
    waits,
)
from bpm.context import StepContext
from bpm.declarations import RetryPolicy
from bpm.errors import Conflict, NotFound, RetryLater, StepFailed
from bpm.models import (
    Barrier,
    LoggedEvent,
    RememberedRow,
    SagaDefinition,
    SagaEvent,
    SagaInstance,
    Signal,
    StepDefinition,
    StepRun,
    Wait,
)
from bpm.planner import Move
from bpm.states import (
    ACTIVE_STATUSES,
    DefinitionEventType,
    Direction,
    EventType,
    PauseScope,
    SagaStatus,
    StepStatus,
    StuckReason,
    WaitKind,
)

log = logging.getLogger(__name__)

ENGINE = "engine"
# How early a doorbell may ring before the run's due time (clock skew between machines).
DUE_TOLERANCE = timedelta(seconds=1)
# The lease outlives the step's timeout a little, so the worker can record its own timeout.
LEASE_GRACE = timedelta(seconds=5)

RunKey = tuple[str, str]
LatestRuns = dict[RunKey, StepRun]
"""The newest run of each (step name, direction)."""
T = TypeVar("T")


class OutcomeKind(Enum):
    SUCCEEDED = "succeeded"
    REFUSED = "refused"
    FAULT = "fault"


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass
class SagaRows:
    """A saga as this worker last wrote it, and its newest runs (read once per job)."""

    saga: SagaInstance
    runs: LatestRuns | None = None

    def latest_runs(self) -> LatestRuns:
        """Return the newest runs, reading them the first time they are needed."""
        if self.runs is None:
            self.runs = latest_runs(self.saga)
        return self.runs


@dataclass(frozen=True)
class Continuation:
    """A run the worker may claim next in the same job (inline continuation), with its view.

    Its doorbell was not rung: the job runs it, or rings it (`ring`) when it may not go on.
    """

    run_id: int
    token: str
    view: SagaRows = field(repr=False)
    due_at: datetime
    timeout: float
    queue: str

    def ring(self) -> None:
        """Ring the doorbell this run was not given, for any worker to take."""
        dispatch.ring_now(self.run_id, self.token, self.due_at, self.timeout, self.queue)


class _HandlerRaised(Exception):
    """Carries what a transactional handler raised out of its (rolled back) transaction."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exc = exc


# --- reading and writing a saga's rows ------------------------------------------------------


def latest_runs(saga: SagaInstance) -> LatestRuns:
    """Return the newest run of each (step name, direction)."""
    steps = {step.id: step for step in definitions.steps_of(saga.definition_id)}
    runs: LatestRuns = {}
    for run in _read_runs(saga.pk):
        run.step = steps[run.step_id]
        run.saga = saga
        runs[(run.step.name, run.direction)] = run
    return runs


def _read_runs(saga_id: uuid.UUID) -> list[StepRun]:
    """Read a saga's runs in id order: `StepRun.objects.filter(saga=...).order_by("id")`, with
    its SQL kept per database rather than compiled by the ORM for every job."""
    if connection.vendor not in _runs_statements:
        quote = connection.ops.quote_name
        meta = StepRun._meta
        saga_fk = meta.get_field("saga")
        assert isinstance(saga_fk, models.ForeignKey)
        fields = [(meta.db_table, f) for f in meta.concrete_fields]
        _runs_statements[connection.vendor] = (
            f"SELECT {', '.join(quote(f.column) for _, f in fields)} FROM {quote(meta.db_table)}"
            f" WHERE {quote(saga_fk.column)} = %s ORDER BY {quote(meta.pk.column)}",
            _converted_columns(fields),
        )
    sql, columns = _runs_statements[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [StepRun._meta.get_field("saga").get_db_prep_value(saga_id, connection)]
        )
        rows = cursor.fetchall()
    names = [f.attname for f in StepRun._meta.concrete_fields]
    return [StepRun.from_db(connection.alias, names, _converted(row, columns)) for row in rows]


Columns = list[tuple[Any, list[Any]]]
_runs_statements: dict[str, tuple[str, Columns]] = {}


def _converted_columns(fields: list[tuple[str, models.Field[Any, Any]]]) -> Columns:
    """Return each (table, field)'s column and its converters, in the ORM's order: the
    backend's converters, then the column's own."""
    columns = []
    for table, f in fields:
        col = f.get_col(table)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        columns.append((col, converters))
    return columns


def _converted(row: Iterable[Any], columns: Columns) -> list[Any]:
    values = []
    for value, (col, converters) in zip(row, columns, strict=True):
        for convert in converters:
            value = convert(value, col, connection)
        values.append(value)
    return values


def plan_inputs(
    saga: SagaInstance, runs: Mapping[RunKey, StepRun]
) -> tuple[list[planner.StepSpec], dict[RunKey, planner.RunState]]:
    """Return the planner's view of a saga."""
    specs = step_specs(definitions.steps_of(saga.definition_id))
    states = {key: planner.RunState(run.status, run.failure_kind) for key, run in runs.items()}
    return specs, states


def step_specs(steps: Iterable[StepDefinition]) -> list[planner.StepSpec]:
    """Return the planner's view of a definition's steps."""
    return [
        planner.StepSpec(
            step.name,
            step.kind,
            bool(step.compensation),
            tuple(step.after) if step.after is not None else None,
        )
        for step in steps
    ]


def _step(saga: SagaInstance, step_id: int) -> StepDefinition:
    return next(s for s in definitions.steps_of(saga.definition_id) if s.id == step_id)


def _lock_run(
    run_id: int, view: SagaRows | None, ahead: BarrierAhead | None = None
) -> tuple[SagaRows, StepRun] | None:
    """Lock the run's saga and read both in one query; reuse the view's runs while it is current.

    With `ahead`, the barrier row goes in the same round trip, after the lock (PostgreSQL).
    """
    locked = _read_run_locking_saga(run_id, ahead)
    if locked is None:
        return None
    run, saga = locked
    if (
        view is None
        or view.saga.pk != saga.pk
        or view.saga.updated_at != saga.updated_at
        # Parallel steps of one saga are recorded by several workers, whose writes may share an
        # updated_at (one clock tick): their runs are read again under the lock every time.
        or not definitions.is_linear(saga.definition_id)
    ):
        view = SagaRows(saga)
    else:
        view.saga = saga
        if view.runs is not None:
            for known in view.runs.values():
                known.saga = saga
    run.step = _step(saga, run.step_id)
    if view.runs is not None:
        view.runs[(run.step.name, run.direction)] = run
    return view, run


def _read_run_locking_saga(
    run_id: int, ahead: BarrierAhead | None = None
) -> tuple[StepRun, SagaInstance] | None:
    """Read a run and its saga in one query that locks the saga row (`FOR UPDATE OF`).

    The query `StepRun.objects.select_related("saga").select_for_update(of=("saga",))` makes,
    with its SQL kept per database rather than compiled by the ORM for every step; the rows are
    converted by the fields' own converters, as the ORM does. With `ahead`, its barrier insert
    follows in the same string (one round trip), and `ahead.inserted` says whether it inserted.
    """
    sql, columns = _lock_statement()
    params: list[Any] = [run_id]
    if ahead is not None:
        insert, insert_params = barrier.insert_statement(
            ahead.saga_id, ahead.step, Barrier.Operation.ACTION
        )
        sql, params = f"{sql}{STATEMENT_SEPARATOR}{insert}", [*params, *insert_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if ahead is not None:
            cursor.nextset()
            ahead.inserted = cursor.rowcount == 1
    if row is None:
        return None
    values = _converted(row, columns)
    # JSON is converted once more, into a copy of its own: a change made inside the row's dict
    # must not change the remembered one.
    remembered = [
        _converted([raw], [column])[0] if isinstance(column[0].target, models.JSONField) else value
        for raw, value, column in zip(row, values, columns, strict=True)
    ]
    run_fields = [f.attname for f in StepRun._meta.concrete_fields]
    saga_fields = [f.attname for f in SagaInstance._meta.concrete_fields]
    split = len(run_fields)
    run = StepRun.from_db(connection.alias, run_fields, values[:split])
    saga = SagaInstance.from_db(connection.alias, saga_fields, values[split:])
    run.remember(dict(zip(run_fields, remembered[:split], strict=True)))
    saga.remember(dict(zip(saga_fields, remembered[split:], strict=True)))
    run.saga = saga
    return run, saga


_lock_statements: dict[str, tuple[str, list[tuple[Any, list[Any]]]]] = {}


def _lock_statement() -> tuple[str, list[tuple[Any, list[Any]]]]:
    if connection.vendor not in _lock_statements:
        quote = connection.ops.quote_name
        runs, sagas = StepRun._meta.db_table, SagaInstance._meta.db_table
        fields = [
            *((runs, f) for f in StepRun._meta.concrete_fields),
            *((sagas, f) for f in SagaInstance._meta.concrete_fields),
        ]
        columns = _converted_columns(fields)
        saga_fk = StepRun._meta.get_field("saga")
        assert isinstance(saga_fk, models.ForeignKey)
        lock = ""
        if connection.features.has_select_for_update_of:
            lock = f" FOR UPDATE OF {quote(sagas)}"
        elif connection.features.has_select_for_update:
            lock = " FOR UPDATE"
        select = ", ".join(f"{quote(table)}.{quote(f.column)}" for table, f in fields)
        _lock_statements[connection.vendor] = (
            f"SELECT {select} FROM {quote(runs)} INNER JOIN {quote(sagas)}"
            f" ON ({quote(runs)}.{quote(saga_fk.column)} = {quote(sagas)}."
            f"{quote(SagaInstance._meta.pk.column)})"
            f" WHERE {quote(runs)}.{quote(StepRun._meta.pk.column)} = %s{lock}",
            columns,
        )
    return _lock_statements[connection.vendor]


def lock_saga(saga_id: uuid.UUID) -> SagaRows:
    """Lock a saga for an operator or the sweeper; raise NotFound when there is none."""
    try:
        saga = SagaInstance.objects.select_for_update().select_related("definition").get(pk=saga_id)
    except SagaInstance.DoesNotExist:
        raise NotFound(f"no saga with id {saga_id}") from None
    return SagaRows(saga)


def _save(saga: SagaInstance, *runs: StepRun, saga_fields: Iterable[str] | None = None) -> None:
    """Write the changed runs, the saga row and every event they logged (one insert)."""
    with _one_round_trip():
        for run in runs:
            _update_row(run)
        _update_row(saga, saga_fields)
        _write_events([saga])


# --- the statements of one save, in one round trip ---------------------------------------------
#
# A step's writes (its run, the next run, the saga row, the events) do not depend on each other's
# results, except the events that name a run inserted with them. On PostgreSQL they are sent as
# one string of statements (Django's psycopg cursor binds parameters on the client, so a string
# may hold several), which saves a network round trip per statement; an event names the run
# inserted before it in the same string by the sequence's `currval`. SQLite is in the process:
# its statements go one by one, as they come.

# Joins the statements of one round trip; tests and benchmarks split on it to count statements.
STATEMENT_SEPARATOR = ";\n/* bpm: next statement */ "


@dataclass
class _Statement:
    sql: str
    params: list[Any]
    # Reads the statement's own result (its rowcount, its RETURNING row).
    check: Callable[[Any], None] | None


@dataclass
class _RoundTrip:
    statements: list[_Statement] = field(default_factory=list)
    # The run whose INSERT is among the statements: an event naming it uses `currval`.
    inserted_run: StepRun | None = None

    def send(self) -> None:
        statements, self.statements, self.inserted_run = self.statements, [], None
        if not statements:
            return
        sql = STATEMENT_SEPARATOR.join(statement.sql for statement in statements)
        params = [param for statement in statements for param in statement.params]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for i, statement in enumerate(statements):
                if i:
                    cursor.nextset()
                if statement.check is not None:
                    statement.check(cursor)


class _Pending(threading.local):
    round_trip: _RoundTrip | None = None


_pending = _Pending()


@contextmanager
def _one_round_trip() -> Iterator[None]:
    """Send the statements written inside the block together when it ends (PostgreSQL).

    Nothing inside may read what they write. Nested blocks join the outermost one.
    """
    if _pending.round_trip is not None or connection.vendor != "postgresql":
        yield
        return
    _pending.round_trip = _RoundTrip()
    try:
        yield
        _pending.round_trip.send()
    finally:
        _pending.round_trip = None


def _write(sql: str, params: list[Any], check: Callable[[Any], None] | None = None) -> None:
    """Run this statement now, or with the others of the round trip being gathered."""
    if _pending.round_trip is not None:
        _pending.round_trip.statements.append(_Statement(sql, params, check))
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if check is not None:
            check(cursor)


def _update_row(row: models.Model, fields: Iterable[str] | None = None) -> None:
    """UPDATE an existing row's changed columns (or `fields`), as `save()` does for a locked row.

    A row read by the engine's lock (`RememberedRow`) writes only the columns that differ from
    what was read, so a step does not serialise the saga's input and context when it did not
    change them; any other row writes every column. The SQL is kept per model, columns and
    database (no data is cached). A row never saved goes through `save()`.
    """
    if row._state.adding:
        row.save(update_fields=fields)
        return
    model = type(row)
    if fields is not None:
        key: tuple[str, ...] | None = tuple(fields)
    else:
        changed = row.changed_fields() if isinstance(row, RememberedRow) else None
        key = None if changed is None else tuple(f.attname for f in changed)
        if key == ():
            return  # nothing changed since the row was read under the lock
    if isinstance(row, RememberedRow):
        row.forget()  # once written, the remembered values are no longer the row's
    sql, columns = _update_statement(model, key)
    values = _row_values(row, columns, add=False)
    pk = row.pk

    def check(cursor: Any) -> None:
        if cursor.rowcount != 1:
            raise DatabaseError(f"{model.__name__} {pk} vanished under its lock")

    _write(sql, [*values, row._meta.pk.get_db_prep_value(pk, connection)], check)


_update_statements: dict[
    tuple[str, type[models.Model], tuple[str, ...] | None], tuple[str, list[models.Field[Any, Any]]]
] = {}


def _update_statement(
    model: type[models.Model], fields: tuple[str, ...] | None
) -> tuple[str, list[models.Field[Any, Any]]]:
    key = (connection.vendor, model, fields)
    if key not in _update_statements:
        meta = model._meta
        columns = [
            f
            for f in meta.concrete_fields
            if not f.primary_key and (fields is None or f.name in fields or f.attname in fields)
        ]
        assert meta.pk is not None
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in columns)
        _update_statements[key] = (
            f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s",
            columns,
        )
    return _update_statements[key]


def _insert_run(run: StepRun) -> None:
    """INSERT a new run, as `save()` does, with its SQL kept per database.

    Its id is set when the statement has run: within a round trip being gathered, that is when
    the round trip is sent (an event naming the run meanwhile uses `currval`). Only one run of a
    round trip can be named that way, so a second one sends the first.
    """
    pending = _pending.round_trip
    if pending is not None and pending.inserted_run is not None:
        pending.send()
    sql, fields = _insert_run_statement()
    values = _row_values(run, fields, add=True)

    def check(cursor: Any) -> None:
        if connection.features.can_return_columns_from_insert:
            run.pk = cursor.fetchone()[0]
        else:
            run.pk = cursor.lastrowid
        run._state.adding = False
        run._state.db = connection.alias

    _write(sql, values, check)
    if pending is not None:
        pending.inserted_run = run


_insert_run_statements: dict[str, tuple[str, list[models.Field[Any, Any]]]] = {}


def _insert_run_statement() -> tuple[str, list[models.Field[Any, Any]]]:
    if connection.vendor not in _insert_run_statements:
        meta = StepRun._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        returning = ""
        if connection.features.can_return_columns_from_insert:
            returning = f" RETURNING {quote(meta.pk.column)}"
        _insert_run_statements[connection.vendor] = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))}){returning}",
            fields,
        )
    return _insert_run_statements[connection.vendor]


def _write_events(sagas: Iterable[SagaInstance]) -> None:
    events: list[LoggedEvent] = []
    for saga in sagas:
        events.extend(saga.take_events())
    if len(events) > EVENTS_IN_ONE_STATEMENT:  # a sweep's batch: bulk_create sizes the inserts
        SagaEvent.objects.bulk_create([event.as_model() for event in events])
    elif events:
        _insert_events(events)


# A step logs a few events; a sweep's batch, hundreds.
EVENTS_IN_ONE_STATEMENT = 20


def _insert_events(events: list[LoggedEvent]) -> None:
    """INSERT these events in one statement, as bulk_create does, with its SQL kept per shape.

    Nothing reads an event's id after it is written, so none is returned. An event naming the
    run inserted in the same round trip, whose id is not known yet, names it by `currval`.
    """
    fields = [f for f in SagaEvent._meta.concrete_fields if not f.primary_key]
    without_run = [f for f in fields if f.attname != "step_run_id"]
    pending = _pending.round_trip
    inserted = pending.inserted_run if pending is not None else None
    params: list[Any] = []
    by_currval = []
    for event in events:
        columns = event.columns()
        # A run created in this transaction got its id after the event was logged.
        if event.step_run is not None and event.step_run.pk is None:
            assert event.step_run is inserted, "an event names a run that was never inserted"
            by_currval.append(True)
            params.extend(_prepared(columns, without_run))
        else:
            by_currval.append(False)
            params.extend(_prepared(columns, fields))
    _write(_insert_events_statement(fields, tuple(by_currval)), params)


def _insert_events_statement(
    fields: list[models.Field[Any, Any]], by_currval: tuple[bool, ...]
) -> str:
    key = (connection.vendor, by_currval)
    if key not in _insert_statements:
        quote = connection.ops.quote_name
        run_table = StepRun._meta.db_table
        currval = f"currval(pg_get_serial_sequence('{run_table}', 'id'))"
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        named = (
            "(" + ", ".join(currval if f.attname == "step_run_id" else "%s" for f in fields) + ")"
        )
        _insert_statements[key] = (
            f"INSERT INTO {quote(SagaEvent._meta.db_table)}"
            f" ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES {', '.join(named if n else row for n in by_currval)}"
        )
    return _insert_statements[key]


_insert_statements: dict[tuple[str, tuple[bool, ...]], str] = {}


# --- a row's values as the database takes them -------------------------------------------------


def _row_values(
    row: models.Model, fields: Iterable[models.Field[Any, Any]], *, add: bool
) -> list[Any]:
    """Return `field.get_db_prep_save(field.pre_save(row, add))` for each field, as `save()` does.

    A field whose `pre_save` makes the value (auto_now) takes the field's own path.
    """
    fields = list(fields)
    if any(_makes_value(f) for f in fields):
        return [f.get_db_prep_save(f.pre_save(row, add), connection) for f in fields]
    return _prepared(row.__dict__, fields)


def _makes_value(f: models.Field[Any, Any]) -> bool:
    return bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))


def _prepared(values: Mapping[str, Any], fields: Iterable[models.Field[Any, Any]]) -> list[Any]:
    """Return `field.get_db_prep_save(value)` for each field's value (by attname).

    A step prepares some fifty values; Django's generic path costs several calls each. The
    values of the plain kinds a step writes (text, integers, booleans, aware datetimes, UUIDs,
    None) are prepared here the way those fields do it; anything else (JSON, an expression)
    takes the field's own path.
    """
    prepared = []
    # The thread's own connection, looked up once rather than through the proxy per value.
    db = connections[DEFAULT_DB_ALIAS]
    vendor = db.vendor
    for f in fields:
        prep = _preppers.get((vendor, f))
        if prep is None:
            prep = _preppers[(vendor, f)] = _prepper(f, db)
        prepared.append(prep(values[f.attname], db))
    return prepared


Prepper = Callable[[Any, BaseDatabaseWrapper], Any]
_preppers: dict[tuple[str, models.Field[Any, Any]], Prepper] = {}


def _prepper(f: models.Field[Any, Any], db: BaseDatabaseWrapper) -> Prepper:
    """Return how to prepare this field's value on `db`'s kind of database."""
    slow = f.get_db_prep_save
    target = f.target_field if isinstance(f, models.ForeignKey) else f
    plain: tuple[type, ...] = ()
    if isinstance(target, models.BooleanField):
        plain = (bool,)
    elif isinstance(target, models.CharField | models.TextField):

        def text(value: Any, db: BaseDatabaseWrapper) -> Any:
            # A str (a choices enum's member too) or None is passed on as the field would.
            return value if value is None or isinstance(value, str) else slow(value, db)

        return text
    elif isinstance(target, models.IntegerField):  # the auto fields are integer fields too
        plain = (int,)
    elif isinstance(target, models.DateTimeField):

        def aware_datetime(value: Any, db: BaseDatabaseWrapper) -> Any:
            if value is None:
                return None
            if type(value) is datetime and value.tzinfo is not None:
                return db.ops.adapt_datetimefield_value(value)
            return slow(value, db)

        return aware_datetime
    elif isinstance(target, models.UUIDField):
        native = db.features.has_native_uuid_field

        def uuid_value(value: Any, db: BaseDatabaseWrapper) -> Any:
            if value is None:
                return None
            if type(value) is uuid.UUID:
                return value if native else value.hex
            return slow(value, db)

        return uuid_value
    if not plain:
        return slow

    def plain_value(value: Any, db: BaseDatabaseWrapper) -> Any:
        return value if value is None or type(value) in plain else slow(value, db)

    return plain_value


# --- starting and following the plan ---------------------------------------------------------


def start(
    *,
    definition: SagaDefinition,
    input: dict[str, Any],
    business_key: str = "",
    idempotency_key: str | None = None,
    deadline: datetime | None = None,
    actor: str,
    owner: Any = None,
) -> SagaInstance:
    """Create a saga and schedule its first step; call inside a transaction."""
    if not definition.is_published:
        # The last line of defence: whoever resolved the row, a draft never runs.
        raise Conflict(f"{definition} is {definition.status}, not published: it starts no saga")
    saga = SagaInstance(
        definition=definition,
        definition_name=definition.name,
        input=input,
        business_key=business_key,
        idempotency_key=idempotency_key,
        deadline=deadline,
        owner=owner,
        # Started while its definition is paused: it waits with the others (its first run is
        # created, and refused by the claim until the definition is resumed).
        paused=PauseScope.DEFINITION if definition.paused_at else PauseScope.NONE,
    )
    saga.log(EventType.SAGA_STARTED, actor, data={"version": definition.version})
    # A new saga has no runs, so planning needs no query. Its first run is inserted before the
    # saga row (the id is made here, and foreign keys are checked at commit), so the saga row is
    # written once, already holding what planning changed.
    follow_plan(saga, {}, actor=actor)
    saga.save(force_insert=True)
    _write_events([saga])
    return saga


def follow_plan(
    saga: SagaInstance, runs: LatestRuns, *, actor: str, inline_queue: str | None = None
) -> StepRun | None:
    """Apply the planner's decisions until the saga waits or ends; the caller saves the saga.

    `runs` is kept current as runs are created. Returns the next run when it may be continued
    inline on `inline_queue` instead of rung (its id is known once the caller has saved).
    """
    while True:
        specs, states = plan_inputs(saga, runs)
        decision = planner.decide(specs, saga.status, states)
        match decision.move:
            case Move.RUN if saga.paused and runs:
                # Paused: the running step finished, its successor waits for the resume.
                pass
            case Move.RUN:
                return _schedule(saga, runs, decision, actor=actor, inline_queue=inline_queue)
            case Move.COMPLETE:
                saga.complete(actor=actor)
            case Move.COMPENSATE:
                saga.start_compensating(actor=actor, failure=_failure_of(runs, decision.step))
                continue
            case Move.COMPENSATED:
                saga.finish_compensating(actor=actor)
            case Move.STUCK:
                run = runs[(decision.step, decision.direction)]
                saga.get_stuck(
                    actor=actor,
                    reason=decision.reason,
                    message=f"{run}: {run.last_error}",
                    cause=run,
                )
            case Move.WAIT | Move.NOTHING:
                pass
        return None


def _failure_of(runs: Mapping[RunKey, StepRun], step: str) -> dict[str, Any]:
    run = runs[(step, Direction.FORWARD)]
    refusal = run.output or {}
    return {
        "step": step,
        "kind": run.failure_kind,
        "code": refusal.get("code", "RETRIES_EXHAUSTED"),
        "message": run.last_error,
    }


def _schedule(
    saga: SagaInstance,
    runs: LatestRuns,
    decision: planner.Decision,
    *,
    actor: str,
    inline_queue: str | None,
) -> StepRun | None:
    """Create a run of each step the decision starts, ringing all but the one continued inline.

    Parallel steps are scheduled in the same transaction; their doorbells ring on its commit,
    so any worker may take each of them. A rerun step keeps its generation (its idempotency key).
    """
    steps = {s.name: s for s in definitions.steps_of(saga.definition_id)}
    continuation = None
    for name in decision.steps:
        step = steps[name]
        previous = runs.get((step.name, decision.direction))
        generation = previous.generation if previous is not None else 0
        run = schedule_run(
            saga, step, decision.direction, actor=actor, ring=False, generation=generation
        )
        runs[(step.name, run.direction)] = run
        if continuation is None and inline_queue is not None and step.queue == inline_queue:
            continuation = run
            continue
        dispatch.ring(run, timeout=step.timeout, queue=step.queue)
    return continuation


def schedule_run(
    saga: SagaInstance,
    step: StepDefinition,
    direction: str,
    *,
    actor: str,
    ring: bool = True,
    generation: int = 0,
) -> StepRun:
    """Create a PENDING run of this step and, unless told not to, ring its doorbell on commit."""
    run = StepRun(saga=saga, step=step, direction=direction, generation=generation)
    _insert_run(run)
    run.schedule(actor=actor)
    if ring:
        dispatch.ring(run, timeout=step.timeout, queue=step.queue)
    return run


# --- running a step ---------------------------------------------------------------------------


def execute(
    run_id: int, token: str, *, view: SagaRows | None = None, inline: bool = False
) -> Continuation | None:
    """Claim, run and record one step; return the next run if it may continue inline.

    `view` is what the previous step of the same job left (inline continuation). Every line
    logged for the step, the handler's too, names its saga, step, attempt, worker and the
    request that started the saga (bpm/log_context.py).
    """
    actor = dispatch.worker_actor()
    with log_context.bound(worker=actor.removeprefix("worker:")):
        return _execute(run_id, token, view, actor=actor, inline=inline)


def _execute(
    run_id: int,
    token: str,
    view: SagaRows | None,
    *,
    actor: str,
    inline: bool,
    look_ahead: bool = True,
) -> Continuation | None:
    ahead = _barrier_ahead(run_id, view) if look_ahead else None
    try:
        with transaction.atomic():
            claimed = claim(run_id, token, view, actor=actor, ahead=ahead)
            if ahead is not None and (claimed is None or not ahead.fits(*claimed)):
                raise _AheadMissed  # rolls the barrier row back with everything else
            if claimed is None:
                return None
            view, run, handler, owner = claimed
            if handler is None:
                return _begin_wait(view, run, actor=actor, inline=inline)
            if handler.transactional:
                entered = ahead.inserted if ahead is not None else None
                outcome = _run_behind_barrier(view.saga, run, handler, actor=actor, entered=entered)
                return record(view, run, outcome, actor=actor, inline=inline)
            _save(view.saga, run, saga_fields=["updated_at"])
    except _HandlerRaised as raised:
        return _record_raised(run_id, token, raised.exc, actor=actor, inline=inline)
    except _AheadMissed:
        # Refused, or not the step foreseen: claim again the ordinary way (nothing committed).
        return _execute(run_id, token, None, actor=actor, inline=inline, look_ahead=False)
    return _finish_at_least_once(view, run, handler, owner, actor=actor, inline=inline)


@dataclass
class BarrierAhead:
    """The barrier row of a transactional action continued inline, sent with the claim's lock.

    The worker knows the run it continues, so on PostgreSQL the row is inserted in the lock's
    round trip rather than in one of its own. The claim still decides: if it refuses the run, or
    the run is not the one foreseen, the transaction rolls back (the row with it) and the run
    is claimed again the ordinary way.
    """

    saga_id: uuid.UUID
    step: str
    handler: registry.Handler
    inserted: bool | None = None

    def fits(
        self, view: SagaRows, run: StepRun, handler: registry.Handler | None, owner: uuid.UUID
    ) -> bool:
        return (
            view.saga.pk == self.saga_id
            and run.direction == Direction.FORWARD
            and run.barrier_step == self.step
            and handler is self.handler
        )


class _AheadMissed(Exception):
    """The claim did not take the run the barrier row was written ahead for."""


def _barrier_ahead(run_id: int, view: SagaRows | None) -> BarrierAhead | None:
    """Foresee the barrier row of this run when it is a transactional action continued inline
    on PostgreSQL (where a round trip saves a network exchange); None otherwise."""
    if view is None or view.runs is None or connection.vendor != "postgresql":
        return None
    run = next((r for r in view.runs.values() if r.pk == run_id), None)
    if run is None or run.direction != Direction.FORWARD or run.status != StepStatus.PENDING:
        return None
    step = run.step
    if step.wait or step.http_call(Direction.FORWARD) is not None:
        return None
    try:
        handler = registry.get_handler(step.handler_name(Direction.FORWARD))
    except KeyError:
        return None
    if not handler.transactional:
        return None
    return BarrierAhead(view.saga.pk, run.barrier_step, handler)


def claim(
    run_id: int, token: str, view: SagaRows | None, *, actor: str, ahead: BarrierAhead | None = None
) -> tuple[SagaRows, StepRun, registry.Handler | None, uuid.UUID] | None:
    """Lock the saga and claim the run for this doorbell, or return None when it may not.

    The one place a worker takes a run: the claim is checked and made under the saga's lock.
    The handler is None for a signal or task wait, which runs nothing. `ahead` is a barrier row
    sent with the lock (`BarrierAhead`); the caller rolls back if the claim does not fit it.
    """
    locked = _lock_run(run_id, view, ahead)
    if locked is None:
        log.warning("doorbell for unknown step run %s ignored", run_id)
        return None
    view, run = locked
    if _doorbell_problem(view.saga, run, token):
        return None
    forward = run.direction == Direction.FORWARD
    handler: registry.Handler | None = None
    if not (forward and waits.runs_no_action(run.step.wait)):
        handler_name = run.step.handler_name(run.direction)
        call = run.step.http_call(run.direction)
        try:
            handler = (
                http_calls.handler_for(call, name=handler_name, timeout=run.step.timeout)
                if call is not None
                else registry.get_handler(handler_name)
            )
        except KeyError:
            _stop_for_missing_handler(view.saga, run, handler_name, actor=actor)
            return None
    owner = uuid.uuid4()
    lease_until = clock.now() + timedelta(seconds=run.step.timeout) + LEASE_GRACE
    run.claim(actor=actor, owner=owner, lease_until=lease_until)
    if handler is not None and waits.kind_of(run.step.wait) == waits.TASK_TOKEN and forward:
        # Before the action runs: an answer may come back before the action returns.
        _open_wait(view.saga, run)
    log_context.add(
        saga_id=str(view.saga.pk),
        step=run.step.name,
        attempt=run.attempts,
        request_id=view.saga.request_id,
    )
    return view, run, handler, owner


def _doorbell_problem(saga: SagaInstance, run: StepRun, token: str) -> str:
    """Return why this doorbell may not claim the run, or "" when it may."""
    problem = ""
    if str(run.token) != token:
        problem = "stale token"
    elif run.status != StepStatus.PENDING:
        problem = f"run is {run.status}"
    elif run.due_at > clock.now() + DUE_TOLERANCE:
        problem = "not due yet"
    elif not saga.is_active:
        problem = f"saga is {saga.status}"
    elif saga.paused:
        # Read with the lock, in the same query: pausing costs the hot path nothing.
        problem = "saga is paused"
    if problem:
        log.info("doorbell for run %s refused: %s", run.id, problem)
    return problem


def _stop_for_missing_handler(
    saga: SagaInstance, run: StepRun, handler_name: str, *, actor: str
) -> None:
    """Stop the saga at once when this worker has no handler for the run (renamed or removed).

    Retrying cannot help and nothing ran, so the run is cancelled (an operator retry after the
    handler is back runs it afresh, and a compensation has nothing of it to undo).
    """
    message = (
        f"{run}: the handler {handler_name!r} is not registered in {actor}"
        " (renamed or removed while this version still runs)"
    )
    run.cancel(actor=actor, reason=message)
    saga.get_stuck(actor=actor, reason=StuckReason.HANDLER_MISSING, message=message, cause=run)
    _save(saga, run)


def _run_behind_barrier(
    saga: SagaInstance,
    run: StepRun,
    handler: registry.Handler,
    *,
    actor: str,
    entered: bool | None = None,
) -> Outcome:
    """Enter the barrier and run the handler; what either raises comes out as _HandlerRaised.

    `entered` is whether the barrier row sent with the claim was inserted (None: not sent).
    """
    try:
        verdict = barrier.enter(saga, run.barrier_step, run.direction, inserted=entered)
        if verdict is barrier.Verdict.RUN:
            return _call(handler, run)
    except Exception as exc:
        raise _HandlerRaised(exc) from exc
    if verdict is barrier.Verdict.NULL_COMPENSATION:
        run.log(EventType.NULL_COMPENSATION, actor, "the action never ran: nothing to undo")
        return Outcome(OutcomeKind.SUCCEEDED, output={})
    if verdict is barrier.Verdict.HANGING:
        message = "the action arrived after its compensation"
        run.log(EventType.HANGING_REFUSED, actor, message)
        error = {"code": "HANGING", "message": message, "data": {}}
        return Outcome(OutcomeKind.REFUSED, error=error)
    run.log(EventType.DUPLICATE_SKIPPED, actor, "this operation already committed")
    previous = (
        StepRun.objects.filter(
            saga=saga,
            step=run.step,
            direction=run.direction,
            generation=run.generation,
            status=StepStatus.SUCCEEDED,
        )
        .order_by("-id")
        .first()
    )
    return Outcome(OutcomeKind.SUCCEEDED, output=previous.output if previous else {})


def _record_raised(
    run_id: int, token: str, exc: Exception, *, actor: str, inline: bool
) -> Continuation | None:
    """Record what a transactional handler raised, its transaction rolled back with its writes.

    The run is claimed afresh under the lock: if another doorbell took it meanwhile, that one
    ran the step again (nothing of this attempt committed) and this fault is not recorded.
    """
    with transaction.atomic():
        claimed = claim(run_id, token, None, actor=actor)
        if claimed is None:
            return None
        view, run, _, _ = claimed
        return record(view, run, _outcome_of(exc), actor=actor, inline=inline)


# --- waiting -----------------------------------------------------------------------------------


WAIT_KINDS = {
    waits.SIGNAL: WaitKind.SIGNAL,
    waits.TASK_TOKEN: WaitKind.TOKEN,
    waits.TASK: WaitKind.TASK,
}


def _open_wait(saga: SagaInstance, run: StepRun) -> Wait:
    """Return the wait row of a claimed run of a wait step, making it at its first attempt."""
    wait = Wait.objects.filter(run=run).first()
    if wait is not None:
        return wait
    spec = run.step.wait
    kind = waits.kind_of(spec)
    task = spec.get(waits.TASK, {})
    wait = Wait(
        run=run,
        saga=saga,
        kind=WAIT_KINDS[kind],
        signal=spec.get(waits.SIGNAL, ""),
        group=task.get("group", ""),
        title=task.get("title", ""),
        form=task.get("form"),
    )
    if kind == waits.TASK_TOKEN:
        wait.token_hash = waits.token_hash(waits.token_for(run.id, saga.pk))
    wait.save(force_insert=True)
    return wait


def _begin_wait(view: SagaRows, run: StepRun, *, actor: str, inline: bool) -> Continuation | None:
    """Park a claimed signal or task run, or finish it at once with a signal that came early."""
    wait = _open_wait(view.saga, run)
    if wait.kind == WaitKind.SIGNAL:
        kept = (
            Signal.objects.filter(saga=view.saga, name=wait.signal, consumed_by__isnull=True)
            .order_by("id")
            .first()
        )
        if kept is not None:
            return record(view, run, consume_signal(run, wait, kept), actor=actor, inline=inline)
    _park(run, wait, actor=actor, data={})
    _save(view.saga, run)
    return None


def consume_signal(run: StepRun, wait: Wait, signal: Signal) -> Outcome:
    """Give the waiting run this signal; the caller holds the saga's lock and records it."""
    signal.consumed_by = run
    signal.consumed_at = clock.now()
    signal.save(update_fields=["consumed_by", "consumed_at"])
    _close_wait(wait)
    run.log(
        EventType.SIGNAL_RECEIVED,
        signal.actor,
        f"signal {signal.name!r} received",
        data={"payload": signal.payload},
    )
    return Outcome(OutcomeKind.SUCCEEDED, output=signal.payload)


def _park(run: StepRun, wait: Wait, *, actor: str, data: dict[str, Any]) -> None:
    seconds = waits.timeout_of(run.step.wait)
    what = {
        WaitKind.SIGNAL: f"waiting for the signal {wait.signal!r}",
        WaitKind.TOKEN: "waiting for its task token to be answered",
        WaitKind.TASK: f"waiting for the {wait.group!r} group: {wait.title}",
    }[WaitKind(wait.kind)]
    run.wait(
        actor=actor,
        until=clock.now() + timedelta(seconds=seconds),
        message=f"{what} (at most {seconds:g}s)",
        data={"kind": wait.kind, "wait_id": wait.pk, **data},
    )


def _close_wait(wait: Wait) -> None:
    wait.closed_at = clock.now()
    wait.save(update_fields=["closed_at", "claimed_by", "claimed_at", "early_answer"])


def answer_outcome(early: dict[str, Any]) -> Outcome:
    if early["outcome"] == "succeed":
        return Outcome(OutcomeKind.SUCCEEDED, output=early["output"])
    return Outcome(OutcomeKind.REFUSED, error=early["error"])


def _after_token_action(run: StepRun, outcome: Outcome, *, actor: str) -> Outcome | None:
    """The action of a task-token step returned: wait for the token, or take its early answer."""
    wait = _open_wait(run.saga, run)
    if wait.early_answer is None:
        _park(run, wait, actor=actor, data={"action_output": outcome.output or {}})
        return None
    answer = answer_outcome(wait.early_answer)
    _close_wait(wait)
    return answer


AnswerWait = Callable[[SagaRows, StepRun, Wait], Outcome | None]


def answer_wait(run_id: int, act: AnswerWait, *, actor: str) -> StepRun:
    """Let `act` answer a wait under its saga's lock; record the outcome it returns.

    `act` checks the run and the wait (raising Conflict), logs its event and returns the step's
    outcome, or None when the answer changes only the wait (a claim, an early token answer).
    One transaction: the answer, the step's outcome and the next step commit together.
    """
    with transaction.atomic():
        locked = _lock_run(run_id, None)
        if locked is None:
            raise NotFound(f"no step run with id {run_id}")
        view, run = locked
        wait = Wait.objects.filter(run=run).first()
        if wait is None:
            raise NotFound(f"{run} waits for nothing")
        outcome = act(view, run, wait)
        if outcome is not None:
            if outcome.kind is not OutcomeKind.FAULT:
                _close_wait(wait)
            record(view, run, outcome, actor=actor)
        elif view.saga.unsaved_events:
            _save(view.saga, run)
        return run


def expire_wait(run_id: int, *, actor: str) -> bool:
    """Fail a wait past its timeout (no retry: the timeout was its whole budget)."""
    with transaction.atomic():
        locked = _lock_run(run_id, None)
        if locked is None:
            return False
        view, run = locked
        if run.status != StepStatus.WAITING or run.due_at > clock.now():
            return False
        seconds = waits.timeout_of(run.step.wait)
        message = f"{run} waited {seconds:g}s and nobody answered"
        run.log(EventType.WAIT_TIMED_OUT, actor, message)
        wait = Wait.objects.filter(run=run).first()
        if wait is not None:
            _close_wait(wait)
        error = {"type": "WaitTimedOut", "message": message, "traceback": ""}
        record(view, run, Outcome(OutcomeKind.FAULT, error=error), actor=actor)
        return True


# A signal lands in a saga that is going forward, or stuck (an operator retry may consume it).
SIGNALLED_STATUSES = (SagaStatus.RUNNING, SagaStatus.STUCK)


def receive_signal(
    saga_id: uuid.UUID, name: str, payload: dict[str, Any], *, actor: str
) -> tuple[Signal, bool]:
    """Keep a signal, and give it to the step waiting for it; return it and whether it repeated.

    Under the saga's lock, so of any number of senders one keeps the signal and the others find
    it: a repeat with the same payload is a duplicate, one with another payload a Conflict.
    A signal no step waits for yet is kept for the step that will (consumed when it is claimed).
    """
    with transaction.atomic():
        view = lock_saga(saga_id)
        saga = view.saga
        existing = Signal.objects.filter(saga=saga, name=name).first()
        if existing is not None:
            if existing.payload != payload:
                raise Conflict(
                    f"saga {saga.pk} already received the signal {name!r}"
                    f" ({existing.received_at.isoformat()}) with another payload"
                )
            return existing, True
        if saga.status not in SIGNALLED_STATUSES:
            raise Conflict(f"saga {saga.pk} is {saga.status}: it waits for no signal")
        signal = Signal.objects.create(saga=saga, name=name, payload=payload, actor=actor)
        waiting = next(
            (
                run
                for run in view.latest_runs().values()
                if run.status == StepStatus.WAITING
                and run.direction == Direction.FORWARD
                and run.step.wait.get(waits.SIGNAL) == name
            ),
            None,
        )
        if waiting is None:
            saga.log(
                EventType.SIGNAL_RECEIVED,
                actor,
                f"signal {name!r} received: kept until a step waits for it",
                data={"payload": payload},
            )
            _save(saga, saga_fields=["updated_at"])
            return signal, False
        wait = Wait.objects.get(run=waiting)
        record(view, waiting, consume_signal(waiting, wait, signal), actor=actor)
        return signal, False


def _finish_at_least_once(
    view: SagaRows,
    run: StepRun,
    handler: registry.Handler,
    owner: uuid.UUID,
    *,
    actor: str,
    inline: bool,
) -> Continuation | None:
    try:
        outcome = _call(handler, run)
    except Exception as exc:
        outcome = _outcome_of(exc)
    with transaction.atomic():
        locked = _lock_run(run.id, view)
        assert locked is not None, "a claimed run is never deleted while its saga lives"
        view, run = locked
        if run.status != StepStatus.RUNNING or run.lease_owner != owner:
            run.log(
                EventType.STALE_RESULT,
                actor,
                f"result of attempt {run.attempts} arrived after its lease was taken back",
                data={
                    "outcome": outcome.kind.value,
                    "output": outcome.output,
                    "error": outcome.error,
                },
            )
            _save(view.saga, saga_fields=["updated_at"])
            return None
        return record(view, run, outcome, actor=actor, inline=inline)


def _call(handler: registry.Handler, run: StepRun) -> Outcome:
    """Run the handler under the step's timeout; raise what it raises."""
    with timeout.limit(run.step.timeout):
        output = handler.func(context_for(run))
    if output is None:
        output = {}
    if not isinstance(output, dict):
        raise TypeError(f"handler {handler.name} returned {type(output).__name__}, not a dict")
    return Outcome(OutcomeKind.SUCCEEDED, output=output)


def _outcome_of(exc: Exception) -> Outcome:
    if isinstance(exc, StepFailed):
        error = {"code": exc.code, "message": exc.message, "data": exc.data}
        return Outcome(OutcomeKind.REFUSED, error=error)
    fault: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc)),
    }
    if isinstance(exc, RetryLater) and exc.retry_after is not None:
        fault["retry_after"] = exc.retry_after
    return Outcome(OutcomeKind.FAULT, error=fault)


def context_for(run: StepRun) -> StepContext:
    """Return what the handler of this run receives."""
    saga = run.saga
    return StepContext(
        saga_id=saga.id,
        step=run.step.name,
        direction=run.direction,
        attempt=run.attempts,
        input=saga.input,
        outputs=dict(saga.context),
        idempotency_key=run.idempotency_key,
        business_key=saga.business_key,
        failure=saga.failure if run.direction == Direction.COMPENSATION else None,
        owner_id=saga.owner_id,
        task_token=(
            waits.token_for(run.id, saga.pk)
            if run.direction == Direction.FORWARD
            and waits.kind_of(run.step.wait) == waits.TASK_TOKEN
            else ""
        ),
    )


# --- recording an outcome ---------------------------------------------------------------------


def record(
    view: SagaRows, run: StepRun, outcome: Outcome, *, actor: str, inline: bool = False
) -> Continuation | None:
    """Store the outcome of a RUNNING run, decide the next move and save; caller holds the lock.

    The one place a step's result lands: the run, the saga, the next run and every event of
    the step are written here, in the caller's transaction.
    """
    saga = view.saga
    runs = view.latest_runs()
    runs[(run.step.name, run.direction)] = run
    if (
        outcome.kind is OutcomeKind.SUCCEEDED
        and run.status == StepStatus.RUNNING
        and run.direction == Direction.FORWARD
        and waits.kind_of(run.step.wait) == waits.TASK_TOKEN
    ):
        answered = _after_token_action(run, outcome, actor=actor)
        if answered is None:
            _save(saga, run)
            return None
        outcome = answered
    metrics.observe_outcome(saga, run, outcome.kind.value)  # counted once it commits
    match outcome.kind:
        case OutcomeKind.SUCCEEDED:
            output = outcome.output or {}
            run.succeed(actor=actor, output=output)
            if run.direction == Direction.FORWARD:
                saga.context = {**saga.context, run.step.name: output}
        case OutcomeKind.REFUSED:
            assert outcome.error is not None
            run.refuse(actor=actor, error=outcome.error)
            run.output = {"code": outcome.error["code"], "message": outcome.error["message"]}
        case OutcomeKind.FAULT:
            assert outcome.error is not None
            _record_fault(saga, run, outcome.error, actor=actor)
    with _one_round_trip():
        _update_row(run)
        following = None
        if saga.is_active:
            inline_queue = run.step.queue if inline else None
            following = follow_plan(saga, runs, actor=actor, inline_queue=inline_queue)
        else:
            _settle_flagged(saga, runs, actor=actor)
        _save(saga)
    if following is None:
        return None
    return Continuation(
        following.id,
        str(following.token),
        SagaRows(saga, runs),
        due_at=following.due_at,
        timeout=following.step.timeout,
        queue=following.step.queue,
    )


def _settle_flagged(saga: SagaInstance, runs: LatestRuns, *, actor: str) -> bool:
    """Finish a STUCK saga whose runs say it is done; return whether it was finished.

    The sweeper may flag a saga (past its deadline, no progress) while its last step is still
    committing. The runs are the truth: when every step (or every compensation) is done, the
    saga ends as the planner says instead of staying STUCK with nothing left to do.
    """
    if saga.status != SagaStatus.STUCK:
        return False
    heading = (
        SagaStatus.COMPENSATING
        if saga.stuck_direction == Direction.COMPENSATION
        else SagaStatus.RUNNING
    )
    specs, states = plan_inputs(saga, runs)
    match planner.decide(specs, heading, states).move:
        case Move.COMPLETE:
            saga.complete_after_flag(actor=actor)
        case Move.COMPENSATED:
            saga.compensate_after_flag(actor=actor)
        case _:
            return False
    return True


def _record_fault(saga: SagaInstance, run: StepRun, error: dict[str, Any], *, actor: str) -> None:
    step: StepDefinition = run.step
    if run.attempts >= step.max_attempts or run.status == StepStatus.WAITING:
        run.exhaust(actor=actor, error=error)
        return
    delay = backoff(step.retry_policy, run.attempts)
    if isinstance(error.get("retry_after"), int | float):
        # The service said when to come back (Retry-After); the policy's max backoff still caps it.
        delay = max(delay, min(float(error["retry_after"]), step.max_backoff))
    due_at = clock.now() + timedelta(seconds=delay)
    run.retry_later(actor=actor, error=error, due_at=due_at)
    if saga.is_active:
        dispatch.ring(run, timeout=step.timeout, queue=step.queue)
    else:
        run.cancel(actor=actor, reason=f"the saga is {saga.status}")


def backoff(policy: RetryPolicy, attempts: int, rng: random.Random | None = None) -> float:
    """Return the delay in seconds before the attempt after `attempts` failed ones."""
    delay = min(policy.initial_backoff * policy.multiplier ** (attempts - 1), policy.max_backoff)
    spread = delay * policy.jitter
    return max(0.0, delay - spread + (rng or random).random() * 2 * spread)


# --- the sweeper's moves ----------------------------------------------------------------------


def expire_lease(run_id: int, *, actor: str) -> bool:
    """Turn an expired lease into a failed attempt; return whether it was still expired."""
    with transaction.atomic():
        locked = _lock_run(run_id, None)
        if locked is None:
            return False
        view, run = locked
        if run.status != StepStatus.RUNNING or run.lease_expires_at is None:
            return False
        if run.lease_expires_at > clock.now():
            return False
        message = (
            f"attempt {run.attempts} lost its lease: the worker died or the step ran past its"
            f" timeout of {run.step.timeout:g}s"
        )
        run.log(EventType.LEASE_EXPIRED, actor, message)
        error = {"type": "LeaseExpired", "message": message, "traceback": ""}
        record(view, run, Outcome(OutcomeKind.FAULT, error=error), actor=actor)
        return True


def redrive(seen: Iterable[StepRun], *, actor: str, message: str) -> int:
    """Give each of these PENDING runs a new fence token and ring it; return how many.

    One transaction for the batch. A saga locked right now is being worked on (a long
    transactional step holds the lock while its worker heartbeats): its runs are left to the next
    sweep rather than waited for. A run whose token moved since the sweeper read it is left too.
    The saga rows are not saved: a redrive is not progress, so a saga whose doorbells keep dying
    is still flagged NO_PROGRESS after BPM_STALL_AFTER.
    """
    seen = list(seen)
    tokens = {run.pk: run.token for run in seen}
    if not tokens:
        return 0
    with transaction.atomic():
        sagas = {
            saga.pk: saga
            for saga in SagaInstance.objects.select_for_update(skip_locked=True)
            .filter(pk__in={run.saga_id for run in seen}, status__in=ACTIVE_STATUSES)
            .order_by("pk")
        }
        # Read under the locks: a run claimed since the sweeper looked is no longer PENDING.
        runs = StepRun.objects.filter(pk__in=tokens, saga__in=sagas, status=StepStatus.PENDING)
        redriven = [run for run in runs if run.token == tokens[run.pk]]
        for run in redriven:
            run.saga = sagas[run.saga_id]
            run.step = _step(run.saga, run.step_id)
            run.redrive(actor=actor, message=message)
            dispatch.ring(run, timeout=run.step.timeout, queue=run.step.queue)
        StepRun.objects.bulk_update(redriven, ["token"])
        _write_events(sagas.values())
        return len(redriven)


def flag(
    saga_ids: Iterable[uuid.UUID],
    *,
    reason: str,
    message: str,
    applies: Callable[[SagaInstance], bool],
    actor: str,
) -> int:
    """Mark STUCK each of these sagas that, under its lock, is active and `applies`; say how many.

    One transaction for the batch; sagas locked right now are left to the next sweep. A saga whose
    runs say it is done is finished instead (the runs are the truth).
    """
    with transaction.atomic():
        sagas = list(
            SagaInstance.objects.select_for_update(skip_locked=True)
            .filter(pk__in=list(saga_ids), status__in=ACTIVE_STATUSES, paused=PauseScope.NONE)
            .order_by("pk")
        )
        sagas = [saga for saga in sagas if applies(saga)]
        if not sagas:
            return 0
        runs_of: dict[uuid.UUID, LatestRuns] = {saga.pk: {} for saga in sagas}
        by_id = {saga.pk: saga for saga in sagas}
        for run in StepRun.objects.filter(saga__in=sagas).order_by("id"):
            run.saga = by_id[run.saga_id]
            run.step = _step(run.saga, run.step_id)
            runs_of[run.saga_id][(run.step.name, run.direction)] = run
        flagged = 0
        cancelled: list[StepRun] = []
        for saga in sagas:
            runs = runs_of[saga.pk]
            specs, states = plan_inputs(saga, runs)
            if planner.decide(specs, saga.status, states).move in (Move.COMPLETE, Move.COMPENSATED):
                follow_plan(saga, runs, actor=actor)
                continue
            saga.get_stuck(actor=actor, reason=reason, message=message, cause=_waiting(runs))
            for run in runs.values():
                if run.status in (StepStatus.PENDING, StepStatus.WAITING):
                    run.cancel(actor=actor, reason=message)
                    cancelled.append(run)
            flagged += 1
        SagaInstance.objects.bulk_update(sagas, SAGA_FIELDS_A_FLAG_CHANGES)
        StepRun.objects.bulk_update(cancelled, ["status", "finished_at"])
        _write_events(sagas)
        return flagged


def _waiting(runs: LatestRuns) -> StepRun | None:
    """Return the newest run still pending or running: what a flagged saga was waiting for."""
    waiting = [r for r in runs.values() if r.status in (StepStatus.PENDING, StepStatus.RUNNING)]
    return max(waiting, key=lambda run: run.pk, default=None)


SAGA_FIELDS_A_FLAG_CHANGES = [
    "acknowledged_at",
    "status",
    "stuck_reason",
    "stuck_direction",
    "stuck_step",
    "stuck_error_code",
    "stuck_error",
    "stuck_attempts",
    "updated_at",
    "finished_at",
]


# --- operator actions -------------------------------------------------------------------------


def operate(saga_id: uuid.UUID, act: Callable[[SagaRows], T], *, actor: str) -> T:
    """Run an operator's action under the saga's lock, then follow the plan and save.

    `act` checks the state (raising Conflict), changes the saga through the functions below and
    returns its result. An action logs its audit event; one that logged nothing (a preview) is
    not saved, so a preview changes nothing.
    """
    with transaction.atomic():
        view = lock_saga(saga_id)
        view.latest_runs()
        result = act(view)
        if view.saga.unsaved_events:
            follow_plan(view.saga, view.latest_runs(), actor=actor)
            _save(view.saga)
        return result


def note(
    saga_id: uuid.UUID, change: Callable[[SagaInstance], None], *, fields: list[str]
) -> SagaInstance:
    """Change who is on a saga (assignee, acknowledgement) or comment on it, under its lock.

    `change` sets `fields` and logs its event. Not progress: the saga's updated_at stays, so a
    comment neither hides a stalled saga from the sweeper nor reorders the lists.
    """
    with transaction.atomic():
        saga = lock_saga(saga_id).saga
        updated_at = saga.updated_at
        change(saga)
        saga.updated_at = updated_at
        if fields:
            _update_row(saga, fields)
        _write_events([saga])
        return saga


def edit(
    saga: SagaInstance,
    *,
    input: dict[str, Any] | None,
    context: dict[str, Any] | None,
    actor: str,
) -> None:
    """Replace the saga's input and merge into its context, logging the before and after."""
    if input is not None and input != saga.input:
        saga.log(EventType.INPUT_EDITED, actor, data={"before": saga.input, "after": input})
        saga.input = input
    if context is not None:
        after = {**saga.context, **context}
        if after != saga.context:
            saga.log(EventType.CONTEXT_EDITED, actor, data={"before": saga.context, "after": after})
            saga.context = after


def resume(saga: SagaInstance, *, actor: str, reason: str) -> None:
    """Set a stuck saga going again the way it was going."""
    if saga.stuck_direction == Direction.COMPENSATION:
        failure = saga.failure or {"step": "", "kind": "OPERATOR", "code": "OPERATOR"}
        saga.resume_compensating(actor=actor, reason=reason, failure=failure)
    else:
        saga.resume_forward(actor=actor, reason=reason)


def rerun(saga: SagaInstance, runs: LatestRuns, key: RunKey, *, actor: str) -> StepRun:
    """Schedule a new run of a failed or cancelled run's step, rung on commit."""
    failed = runs[key]
    runs[key] = schedule_run(
        saga, failed.step, failed.direction, actor=actor, generation=failed.generation
    )
    return runs[key]


def rerun_from(
    saga: SagaInstance, runs: LatestRuns, step: str, *, actor: str, reason: str
) -> list[str]:
    """Run a completed or stuck saga forward again from `step`; return the steps superseded.

    Each forward step from `step` on that has run gets a CANCELLED run standing for it (the
    planner runs a cancelled step anew) one generation on, so its new attempts carry a new
    idempotency key and barrier row: the participant does the work again rather than answering
    with the first result. The caller (operate) follows the plan, which schedules `step`.
    """
    steps = list(definitions.steps_of(saga.definition_id))
    names = [s.name for s in steps]
    if saga.status == SagaStatus.COMPLETED:
        finished_at = saga.finished_at
        saga.reopen(actor=actor, reason=reason)
        totals.forget_finish(saga, finished_at)
    else:
        saga.resume_forward(actor=actor, reason=reason)
    superseded = []
    for definition_step in steps[names.index(step) :]:
        key = (definition_step.name, Direction.FORWARD)
        previous = runs.get(key)
        if previous is None:
            break
        if previous.status in (StepStatus.PENDING, StepStatus.RUNNING):
            raise Conflict(f"{previous} is {previous.status}: wait for it, then rerun")
        stand_in = StepRun.objects.create(
            saga=saga,
            step=definition_step,
            direction=Direction.FORWARD,
            generation=previous.generation + 1,
        )
        stand_in.saga = saga
        stand_in.supersede(actor=actor, reason=f"rerun from {step}: {reason}")
        _update_row(stand_in)
        runs[key] = stand_in
        superseded.append(definition_step.name)
    return superseded


def pause(saga: SagaInstance, *, actor: str, reason: str, scope: str = PauseScope.SAGA) -> None:
    """Hold a saga: the claim refuses its runs and the plan schedules no successor."""
    saga.pause(actor=actor, reason=reason, scope=scope)


def unpause(
    saga: SagaInstance, runs: LatestRuns, *, actor: str, reason: str, still: str = PauseScope.NONE
) -> None:
    """Lift a pause; once nothing holds the saga, ring its waiting runs again.

    A doorbell rung while the saga was paused was refused, so each waiting run gets a new fence
    token and a new doorbell (at its due time). The caller (operate) follows the plan after, which
    schedules a successor that the pause held back.
    """
    saga.unpause(actor=actor, reason=reason, scope=still)
    if saga.paused or not saga.is_active:
        return
    for run in runs.values():
        if run.status == StepStatus.PENDING:
            run.redrive(actor=actor, message="the saga was resumed: rang again")
            _update_row(run, ["token"])
            dispatch.ring(run, timeout=run.step.timeout, queue=run.step.queue)


def pause_definition(definition_id: int, *, actor: str, reason: str) -> int:
    """Pause a definition version and every unfinished saga of it; return how many sagas.

    One transaction: a worker that dies in it leaves nothing half paused. A saga that was
    already paused on its own keeps its own pause (resuming the definition leaves it paused).
    """
    with transaction.atomic():
        definition = _lock_definition(definition_id)
        if definition.paused_at is not None:
            raise Conflict(f"{definition} is already paused (since {definition.paused_at})")
        definition.paused_at = clock.now()
        definition.save(update_fields=["paused_at"])
        definition.log(DefinitionEventType.PAUSED, actor, reason)
        sagas = list(
            SagaInstance.objects.select_for_update()
            .filter(definition_id=definition_id, status__in=UNFINISHED, paused=PauseScope.NONE)
            .order_by("pk")
        )
        for saga in sagas:
            saga.pause(actor=actor, reason=reason, scope=PauseScope.DEFINITION)
        SagaInstance.objects.bulk_update(sagas, ["paused", "updated_at"])
        _write_events(sagas)
        return len(sagas)


def resume_definition(definition_id: int, *, actor: str, reason: str) -> int:
    """Resume a paused definition version and the sagas it held; return how many sagas.

    Each saga's waiting runs are rung again and the successors the pause held back are scheduled,
    all in one transaction (the doorbells ring on commit).
    """
    with transaction.atomic():
        definition = _lock_definition(definition_id)
        if definition.paused_at is None:
            raise Conflict(f"{definition} is not paused")
        definition.paused_at = None
        definition.save(update_fields=["paused_at"])
        definition.log(DefinitionEventType.RESUMED, actor, reason)
        sagas = list(
            SagaInstance.objects.select_for_update()
            .filter(definition_id=definition_id, paused=PauseScope.DEFINITION)
            .order_by("pk")
        )
        for saga in sagas:
            view = SagaRows(saga)
            unpause(saga, view.latest_runs(), actor=actor, reason=reason)
            if saga.is_active:
                follow_plan(saga, view.latest_runs(), actor=actor)
            _save(saga)
        return len(sagas)


UNFINISHED = (*ACTIVE_STATUSES, SagaStatus.STUCK)


def _lock_definition(definition_id: int) -> SagaDefinition:
    try:
        return SagaDefinition.objects.select_for_update().get(pk=definition_id)
    except SagaDefinition.DoesNotExist:
        raise NotFound(f"no saga definition with id {definition_id}") from None


def skip(
    saga: SagaInstance, run: StepRun, *, actor: str, reason: str, output: dict[str, Any]
) -> None:
    """Mark a failed or cancelled run done by hand with this output."""
    run.skip(actor=actor, reason=reason, output=output)
    run.save()
    if run.direction == Direction.FORWARD:
        saga.context = {**saga.context, run.step.name: output}


def abort(saga: SagaInstance, runs: Mapping[RunKey, StepRun], *, actor: str, reason: str) -> None:
    """Close a stuck saga as resolved by hand, cancelling what still waits."""
    saga.abort(actor=actor, reason=reason)
    for run in runs.values():
        if run.status in (StepStatus.PENDING, StepStatus.WAITING):
            run.cancel(actor=actor, reason=reason)
            run.save()


# --- moving a saga to another version of its definition ---------------------------------------


def move(saga: SagaInstance, runs: LatestRuns, target: SagaDefinition, *, actor: str) -> None:
    """Pin the saga to `target` and point every run of it at `target`'s step of the same name.

    The caller (services.saga_move) has checked under the saga's lock that the runs map onto
    `target` (bpm/versions.py) and logged the audit event. A PENDING run gets a new fence token
    and a doorbell on its new step's queue, so the doorbell rung for the old version is refused.
    """
    assert connection.in_atomic_block, "a saga moves under its row lock"
    new_steps = {step.name: step for step in definitions.steps_of(target.pk)}
    old_steps = {step.id: step for step in definitions.steps_of(saga.definition_id)}
    remap = [
        models.When(step_id=old_id, then=models.Value(new_steps[old.name].pk))
        for old_id, old in old_steps.items()
        if old.name in new_steps
    ]
    if remap:  # one statement, whatever the number of runs and steps
        StepRun.objects.filter(saga=saga).update(
            step_id=models.Case(
                *remap, default=models.F("step_id"), output_field=models.BigIntegerField()
            )
        )
    saga.definition = target
    for run in runs.values():
        run.step = new_steps[run.step.name]
        if run.status == StepStatus.PENDING:
            run.redrive(actor=actor, message=f"moved to {target}")
            _update_row(run, ["token"])
            dispatch.ring(run, timeout=run.step.timeout, queue=run.step.queue)
