"""The barrier that gives transactional handlers exactly-once effect (the DTM design).

Called inside the outcome transaction, before the handler runs. An insert that hits the unique
constraint means the operation already happened (duplicate) or was pre-empted (hanging).
"""

from __future__ import annotations

import enum
from typing import Any

from django.db import connection, models

from bpm import clock
from bpm.models import Barrier, SagaInstance
from bpm.states import Direction


class Verdict(enum.Enum):
    RUN = "run"
    DUPLICATE = "duplicate"  # this operation already committed: skip the handler
    NULL_COMPENSATION = "null_compensation"  # compensating an action that never ran: no-op
    HANGING = "hanging"  # an action arriving after its compensation: refuse


def _insert(saga: SagaInstance, step: str, operation: str, *, placeholder: bool = False) -> bool:
    """Insert the barrier row unless it exists; return whether this call inserted it.

    `ON CONFLICT DO NOTHING` (PostgreSQL and SQLite alike) instead of catching IntegrityError:
    no savepoint is needed, and the transaction stays usable either way.
    """
    sql, params = insert_statement(saga.pk, step, operation, placeholder=placeholder)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def insert_statement(
    saga_id: Any, step: str, operation: str, *, placeholder: bool = False
) -> tuple[str, list[Any]]:
    """Return the statement inserting this barrier row unless it exists (rowcount 1 if it did).

    The engine may send it with the claim's lock in one round trip (`enter`'s `inserted`).
    """
    table = connection.ops.quote_name(Barrier._meta.db_table)
    return (
        f"INSERT INTO {table} (saga_id, step, operation, placeholder, created_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [
            _db_value("saga", saga_id),
            step,
            operation,
            placeholder,
            _db_value("created_at", clock.now()),
        ],
    )


def _db_value(name: str, value: object) -> Any:
    field = Barrier._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field.get_db_prep_value(value, connection)


def enter(
    saga: SagaInstance, step: str, direction: str, *, inserted: bool | None = None
) -> Verdict:
    """Write this operation's barrier row and say whether the handler may run.

    `inserted` says whether a forward action's row was already inserted by the caller in this
    transaction (`insert_statement`, sent with the claim): True if that insert made it.
    """
    if direction == Direction.FORWARD:
        if inserted is None:
            inserted = _insert(saga, step, Barrier.Operation.ACTION)
        if inserted:
            return Verdict.RUN
        placeholder = Barrier.objects.filter(
            saga=saga, step=step, operation=Barrier.Operation.ACTION, placeholder=True
        ).exists()
        return Verdict.HANGING if placeholder else Verdict.DUPLICATE
    if not _insert(saga, step, Barrier.Operation.COMPENSATION):
        return Verdict.DUPLICATE
    # Taking the action's slot first blocks an action that arrives late.
    if _insert(saga, step, Barrier.Operation.ACTION, placeholder=True):
        return Verdict.NULL_COMPENSATION
    return Verdict.RUN
