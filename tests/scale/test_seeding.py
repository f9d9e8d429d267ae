"""seed_sagas: the rows it writes are ones the planner reaches, on either database."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from bpm import definitions, engine, planner, seeding
from bpm.models import (
    Direction,
    EventType,
    SagaDefinition,
    SagaEvent,
    SagaInstance,
    SagaStatus,
    StepRun,
    StepStatus,
    StuckReason,
)

pytestmark = pytest.mark.django_db

SWEEPER_REASONS = (StuckReason.TIMED_OUT, StuckReason.NO_PROGRESS)


def test_seeded_sagas_have_the_status_their_runs_lead_the_planner_to() -> None:
    definitions.sync_all()
    report = seeding.seed(400, batch_size=70, rng_seed=3)

    assert report.sagas == SagaInstance.objects.count() == 400
    assert report.runs == StepRun.objects.count()
    assert report.events == SagaEvent.objects.count()
    assert set(report.by_status) == {
        SagaStatus.COMPLETED,
        SagaStatus.COMPENSATED,
        SagaStatus.STUCK,
        SagaStatus.ABORTED,
    }
    assert not StepRun.objects.filter(status__in=(StepStatus.PENDING, StepStatus.RUNNING))
    for saga in SagaInstance.objects.all():
        specs, states = engine.plan_inputs(saga, engine.latest_runs(saga))
        forward = planner.decide(specs, SagaStatus.RUNNING, states)
        backward = planner.decide(specs, SagaStatus.COMPENSATING, states)
        if saga.status == SagaStatus.COMPLETED:
            assert forward.move == planner.Move.COMPLETE
        elif saga.status == SagaStatus.COMPENSATED:
            assert backward.move == planner.Move.COMPENSATED
            assert saga.failure and saga.failure["step"]
        elif saga.stuck_direction == Direction.COMPENSATION:
            assert (backward.move, backward.reason) == (planner.Move.STUCK, saga.stuck_reason)
        elif saga.stuck_reason in SWEEPER_REASONS:
            # Flagged by the sweeper: its waiting run was cancelled, a retry runs it again.
            assert forward.move == planner.Move.RUN
        else:
            assert (forward.move, forward.reason) == (planner.Move.STUCK, saga.stuck_reason)
        finished = saga.status != SagaStatus.STUCK
        assert (saga.finished_at is not None) == finished
        assert saga.updated_at >= saga.created_at
        assert saga.business_key.isdigit()


def test_seeded_events_belong_to_their_saga_and_start_with_it() -> None:
    definitions.sync_all()
    seeding.seed(50, rng_seed=4)

    mismatched = [
        event.pk
        for event in SagaEvent.objects.select_related("step_run").exclude(step_run=None)
        if event.step_run.saga_id != event.saga_id
    ]
    assert mismatched == []
    for saga in SagaInstance.objects.all()[:10]:
        types = list(saga.events.order_by("at", "id").values_list("type", flat=True))
        assert types[0] == EventType.SAGA_STARTED


def test_seeding_spreads_sagas_over_versions_older_ones_holding_older_sagas() -> None:
    definitions.sync_all()
    seeding.seed(300, rng_seed=5, versions=3)

    versions = SagaDefinition.objects.filter(name="place_order").order_by("version")
    assert versions.count() >= 3
    spans = {
        row["definition__version"]: row
        for row in SagaInstance.objects.values("definition__version").annotate(n=Count("pk"))
    }
    assert len(spans) == 3
    oldest, newest = versions.first(), versions.last()
    assert oldest is not None and newest is not None
    last_on_oldest = SagaInstance.objects.filter(definition=oldest).latest("created_at")
    first_on_newest = SagaInstance.objects.filter(definition=newest).earliest("created_at")
    assert last_on_oldest.created_at < first_on_newest.created_at


def test_seed_sagas_refuses_a_count_that_is_not_a_positive_number() -> None:
    with pytest.raises(CommandError, match="--count must be from 1 to 10,000,000, not 0"):
        call_command("seed_sagas", "--count", "0")
    with pytest.raises(CommandError, match="--count must be a whole number, not 'many'"):
        call_command("seed_sagas", "--count", "many")


def test_seed_sagas_says_to_sync_definitions_when_none_is_published() -> None:
    SagaDefinition.objects.all().delete()
    with pytest.raises(CommandError, match=r"run `manage\.py sync_definitions` first"):
        call_command("seed_sagas", "--count", "3")


def test_seed_sagas_reports_what_it_wrote(capsys: pytest.CaptureFixture[str]) -> None:
    definitions.sync_all()
    call_command("seed_sagas", "--count", "20", "--seed", "1")

    out = capsys.readouterr().out
    assert out.startswith("seeded 20 sagas, ")
    assert SagaInstance.objects.count() == 20
