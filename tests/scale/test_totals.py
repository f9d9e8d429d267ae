"""The status counts: exact against COUNT(*) whether a saga finished before the rollup's
watermark or after it, and unchanged by deleting finished sagas."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Count
from django.test import override_settings
from testkit import drain, three_steps

from bpm import clock, definitions, seeding, services, sweeper, totals
from bpm.models import FinishedCount, FinishedRollup, SagaInstance, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


def counted() -> dict[int, dict[str, int]]:
    """Return what COUNT(*) says, per definition version and status."""
    found: dict[int, dict[str, int]] = {}
    rows = SagaInstance.objects.order_by().values_list("definition_id", "status")
    for definition_id, status, number in rows.annotate(n=Count("pk")):
        found.setdefault(definition_id, {})[status] = number
    return found


def start_and_finish(number: int) -> list[Any]:
    definition = three_steps()
    sagas = [
        services.saga_start(definition=definition.name, input={}, actor="test")
        for _ in range(number)
    ]
    drain()
    return sagas


# Retention off: the seeded sagas finished up to 90 days ago, and the sweep would archive and
# delete those past BPM_RETAIN_DAYS (the totals keep them; COUNT(*) would not).
@override_settings(BPM_RETAIN_DAYS=0)
def test_counts_are_exact_before_and_after_the_sweep_rolls_finished_sagas_up() -> None:
    definitions.sync_all()
    seeding.seed(150, rng_seed=5)
    assert totals.counts_by_version() == counted()

    # Seeded sagas finished minutes ago, before the watermark: the sweep rolls them up.
    rolled = totals.roll_up()
    finished = SagaInstance.objects.filter(status__in=totals.FINISHED).count()
    assert rolled == finished > 0
    assert sum(FinishedCount.objects.values_list("count", flat=True)) == finished
    assert totals.counts_by_version() == counted()

    # Sagas the engine finishes now are past the watermark: counted live, then rolled up.
    start_and_finish(3)
    assert totals.counts_by_version() == counted()
    assert totals.roll_up() == 0
    clock.advance(totals.LAG.total_seconds() + 1)
    sweeper.sweep_once()
    assert sum(FinishedCount.objects.values_list("count", flat=True)) == finished + 3
    assert totals.counts_by_version() == counted()


def test_the_watermark_never_passes_a_finish_it_has_not_counted() -> None:
    start_and_finish(2)
    clock.advance(totals.LAG.total_seconds() + 1)
    sweeper.sweep_once()
    rollup = FinishedRollup.objects.get()
    assert rollup.through is not None
    assert all(saga.finished_at < rollup.through for saga in SagaInstance.objects.all())
    assert totals.roll_up() == 0
    assert totals.counts_by_version() == counted()


def test_deleting_finished_sagas_keeps_the_totals_of_sagas_ever_finished() -> None:
    definitions.sync_all()
    seeding.seed(80, rng_seed=6)
    totals.roll_up()
    before = totals.counts_by_version()

    # What retention does: delete sagas that finished long ago (behind the watermark).
    SagaInstance.objects.filter(status=SagaStatus.COMPLETED).delete()

    after = totals.counts_by_version()
    assert after == before
    for definition_id, by_status in counted().items():
        assert after[definition_id].get(SagaStatus.STUCK) == by_status.get(SagaStatus.STUCK)


def test_counts_by_name_and_by_version_add_up_the_versions() -> None:
    definitions.sync_all()
    seeding.seed(120, rng_seed=7, versions=2)
    by_version = totals.counts_by("version", name="place_order")
    by_name = totals.counts_by("name")
    assert len(by_version) == 2
    for status in SagaStatus.values:
        assert by_name["place_order"].get(status, 0) == sum(
            row.get(status, 0) for row in by_version.values()
        )
    # The seeder spreads the sagas over every declared definition.
    assert sum(sum(by_status.values()) for by_status in by_name.values()) == 120


def test_counts_are_grouped_by_name_or_version_only() -> None:
    with pytest.raises(ValueError, match="grouped by 'name' or 'version', not 'owner'"):
        totals.counts_by("owner")
