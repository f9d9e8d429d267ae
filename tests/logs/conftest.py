"""Sagas that finished (or not) through the real engine; archives in the test's directory."""

from __future__ import annotations

import pytest
from testkit import fresh, three_steps, with_pivot

from bpm import retention, services
from bpm.models import SagaInstance, SagaStatus


@pytest.fixture
def finished(the_world, drained) -> dict[str, SagaInstance]:
    """Return sagas in every status: three finished ones, one stuck and one running."""
    three_steps(handler="test.local")  # transactional: writes barrier rows
    three_steps()
    the_world.will("c", "refuse:NO")
    compensated = services.saga_start(definition="three_compensatable_remote", input={}, actor="t")
    completed = services.saga_start(
        definition="three_compensatable_local", input={"n": 1}, actor="t", idempotency_key="k1"
    )
    with_pivot()
    the_world.will("after", "fault", "fault", "fault", "fault", "fault", "fault")
    stuck = services.saga_start(definition="with_pivot", input={}, actor="t")
    to_abort = services.saga_start(definition="with_pivot", input={}, actor="t")
    drained()
    services.saga_abort(saga_id=to_abort.id, reason="by hand", actor="user:olga")
    running = services.saga_start(definition="three_compensatable_local", input={}, actor="t")
    sagas = {
        "completed": fresh(completed),
        "compensated": fresh(compensated),
        "aborted": fresh(to_abort),
        "stuck": fresh(stuck),
        "running": fresh(running),
    }
    assert [s.status for s in sagas.values()] == [
        SagaStatus.COMPLETED,
        SagaStatus.COMPENSATED,
        SagaStatus.ABORTED,
        SagaStatus.STUCK,
        SagaStatus.RUNNING,
    ]
    return sagas


@pytest.fixture(autouse=True)
def _archives_in_tmp(settings, tmp_path) -> None:
    settings.BPM_ARCHIVE_DIR = tmp_path / "archive"
    retention.forget_last_pass()
