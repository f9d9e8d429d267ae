"""Many sagas stuck on their first step, written in bulk, for a batch repair to act on.

As bpm.seeding explains, loading test data is the one exception to "the engine is the only writer
of saga rows": running 10,000 sagas until their retries run out would take longer than the batch
that repairs them. Each saga is written as the engine leaves one whose first step exhausted its
attempts: STUCK (retries exhausted, going forward) with its cause copied from that run (step, error
code, message, attempts: what the lists show and the overview groups by), that run FAILED,
nothing PENDING.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from bpm import clock, definitions
from bpm.models import (
    STUCK_ERROR_KEPT,
    Direction,
    EventType,
    FailureKind,
    SagaDefinition,
    SagaEvent,
    SagaInstance,
    SagaStatus,
    StepRun,
    StepStatus,
    StuckReason,
)

CHUNK = 2000


def seed_stuck(
    definition: SagaDefinition,
    count: int,
    input: dict[str, Any],
    *,
    key: str = "stuck",
    code: str = "ConnectionError",
    error: str = "",
) -> list[uuid.UUID]:
    """Write `count` sagas of `definition` stuck on its first step; return their ids.

    `code` is the failing run's error code (an exception's type for a fault) and `error` its
    message ("<step> is unreachable" when empty): the overview groups stuck sagas by them.
    """
    first = definitions.steps_of(definition.id)[0]
    error = error or f"{first.name} is unreachable"
    ids: list[uuid.UUID] = []
    for start in range(0, count, CHUNK):
        now = clock.now()
        sagas = [
            SagaInstance(
                id=uuid.uuid4(),
                definition=definition,
                definition_name=definition.name,
                status=SagaStatus.STUCK,
                stuck_reason=StuckReason.RETRIES_EXHAUSTED,
                stuck_direction=Direction.FORWARD,
                stuck_step=first.name,
                stuck_error_code=code,
                stuck_error=error[:STUCK_ERROR_KEPT],
                stuck_attempts=first.max_attempts,
                input=dict(input),
                business_key=f"{key}-{number}",
                created_at=now,
                updated_at=now,
            )
            for number in range(start, min(start + CHUNK, count))
        ]
        with transaction.atomic():
            SagaInstance.objects.bulk_create(sagas, batch_size=500)
            runs = StepRun.objects.bulk_create(
                [
                    StepRun(
                        saga=saga,
                        step=first,
                        direction=Direction.FORWARD,
                        status=StepStatus.FAILED,
                        attempts=first.max_attempts,
                        due_at=now,
                        last_error=error,
                        error_code=code,
                        failure_kind=FailureKind.EXHAUSTED,
                        created_at=now,
                        finished_at=now,
                    )
                    for saga in sagas
                ],
                batch_size=500,
            )
            SagaEvent.objects.bulk_create(
                [
                    event
                    for saga, run in zip(sagas, runs, strict=True)
                    for event in (
                        SagaEvent(saga=saga, type=EventType.SAGA_STARTED, actor="seed", at=now),
                        SagaEvent(
                            saga=saga,
                            step_run=run,
                            type=EventType.STEP_EXHAUSTED,
                            actor="seed",
                            message=error,
                            at=now,
                        ),
                        SagaEvent(
                            saga=saga,
                            type=EventType.SAGA_STUCK,
                            actor="seed",
                            data={"reason": StuckReason.RETRIES_EXHAUSTED},
                            at=now,
                        ),
                    )
                ],
                batch_size=1000,
            )
        ids.extend(saga.id for saga in sagas)
    return ids
