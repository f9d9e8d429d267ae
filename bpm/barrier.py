"""The barrier that gives transactional handlers exactly-once effect (the DTM design).

Called inside the outcome transaction, before the handler runs. An insert that hits the unique
constraint means the operation already happened (duplicate) or was pre-empted (hanging).
"""

from __future__ import annotations

import enum

from django.db import IntegrityError, transaction

from bpm.models import Barrier, Direction, SagaInstance


class Verdict(enum.Enum):
    RUN = "run"
    DUPLICATE = "duplicate"  # this operation already committed: skip the handler
    NULL_COMPENSATION = "null_compensation"  # compensating an action that never ran: no-op
    HANGING = "hanging"  # an action arriving after its compensation: refuse


def _insert(saga: SagaInstance, step: str, operation: str, *, placeholder: bool = False) -> bool:
    try:
        with transaction.atomic():
            Barrier.objects.create(
                saga=saga, step=step, operation=operation, placeholder=placeholder
            )
    except IntegrityError:
        return False
    return True


def enter(saga: SagaInstance, step: str, direction: str) -> Verdict:
    """Write this operation's barrier row and say whether the handler may run."""
    if direction == Direction.FORWARD:
        if _insert(saga, step, Barrier.Operation.ACTION):
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
