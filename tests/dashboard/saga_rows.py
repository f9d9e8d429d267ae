"""Saga rows for the dashboard's page tests, written straight to the database in one INSERT."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bpm import clock
from bpm.models import SagaDefinition, SagaInstance, SagaStatus


def make_sagas(
    definition: SagaDefinition,
    count: int,
    *,
    status: str = SagaStatus.RUNNING,
    start: datetime | None = None,
    spacing: timedelta = timedelta(minutes=1),
    **fields: Any,
) -> list[SagaInstance]:
    """Create `count` sagas of `definition`, created `spacing` apart from `start` (default: now)."""
    start = start or clock.now()
    rows = []
    for index in range(count):
        created = start + index * spacing
        values = {"created_at": created, "updated_at": created, **fields}
        rows.append(
            SagaInstance(
                definition=definition,
                definition_name=definition.name,
                status=status,
                **values,
            )
        )
    return SagaInstance.objects.bulk_create(rows)
