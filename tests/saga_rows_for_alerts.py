"""Stuck saga rows for the alert tests, written straight to the database."""

from __future__ import annotations

from typing import Any

from bpm import clock
from bpm.models import SagaDefinition, SagaInstance, SagaStatus, StuckReason


def make_stuck(definition: SagaDefinition, count: int, **fields: Any) -> list[SagaInstance]:
    """Create `count` STUCK sagas of `definition` (retries exhausted unless `fields` say)."""
    now = clock.now()
    values = {"stuck_reason": StuckReason.RETRIES_EXHAUSTED, "updated_at": now, **fields}
    return SagaInstance.objects.bulk_create(
        SagaInstance(
            definition=definition,
            definition_name=definition.name,
            status=SagaStatus.STUCK,
            created_at=now,
            **values,
        )
        for _ in range(count)
    )


def unstick(sagas: list[SagaInstance]) -> None:
    """Mark these sagas ABORTED, as an operator resolving them by hand leaves them."""
    SagaInstance.objects.filter(pk__in=[saga.pk for saga in sagas]).update(
        status=SagaStatus.ABORTED, updated_at=clock.now(), finished_at=clock.now()
    )
