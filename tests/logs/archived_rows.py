"""A snapshot of every row some sagas own, to compare before and after an archive's round trip."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bpm.models import Barrier, SagaEvent, SagaInstance, StepRun


def rows_of(saga_ids: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    """Return every row these sagas own, table by table, in id order."""
    ids = list(saga_ids)
    return {
        "sagas": list(SagaInstance.objects.filter(pk__in=ids).order_by("id").values()),
        "runs": list(StepRun.objects.filter(saga_id__in=ids).order_by("id").values()),
        "events": list(SagaEvent.objects.filter(saga_id__in=ids).order_by("id").values()),
        "barriers": list(Barrier.objects.filter(saga_id__in=ids).order_by("id").values()),
    }
