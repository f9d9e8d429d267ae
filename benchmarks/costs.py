"""Counted costs: queries, commits and Redis calls per step, per start, per sweep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import django_rq
from django.conf import settings

from benchmarks import handlers
from benchmarks.counting import Cost, counting
from benchmarks.throughput import require_completed, start, work
from bpm import clock, sweeper
from bpm.models import Direction, SagaInstance, StepRun

SEED_BATCH = 1000


@dataclass
class StepCost:
    """What a transactional step costs: one more step (the difference between a 6-step and a
    2-step saga, divided by 4, as tests/bpm/test_costs.py counts it), and the average step of
    whole 4-step sagas run by one worker in one burst (jobs and the worker's upkeep included)."""

    marginal: Cost
    whole_saga: Cost
    steps: int


def step_cost(whole_sagas: int) -> StepCost:
    """Count a 2-step and a 6-step saga's work; the difference divided by 4 is one more step."""
    short, long = (
        _saga_work(handlers.declare(f"bench_local_{n}", "bench.local", n).name) for n in (2, 6)
    )
    whole = _saga_work(handlers.TRANSACTIONAL, whole_sagas)
    # Redis calls are left out: the worker's own upkeep (heartbeats, registries) makes them vary
    # from run to run, so only the whole saga's are reported.
    marginal = Cost(
        queries=(long.queries - short.queries) // 4,
        round_trips=(long.round_trips - short.round_trips) // 4,
        commits=(long.commits - short.commits) // 4,
    )
    return StepCost(marginal=marginal, whole_saga=whole, steps=handlers.STEPS * whole_sagas)


def _saga_work(definition: str, sagas: int = 1) -> Cost:
    """Return what one worker spends running `sagas` sagas of `definition` from start to end."""
    started = [start(definition) for _ in range(sagas)]
    with counting() as cost:
        work()
    require_completed([saga.pk for saga in started])
    return cost


def start_cost() -> Cost:
    """Count one saga start (the definition already cached, as in a running process)."""
    start(handlers.TRANSACTIONAL)
    with counting() as cost:
        saga = start(handlers.TRANSACTIONAL)
    work()
    require_completed([saga.pk])
    return cost


def idle_sweep_cost() -> Cost:
    """Count one sweep when nothing is due, expired, overdue or stalled."""
    sweeper.sweep_once()
    with counting() as cost:
        sweeper.sweep_once()
    return cost


@dataclass
class DueSweep:
    runs: int  # due runs seeded, none with a live doorbell
    first: Cost  # one sweep over them
    first_redriven: int
    sweeps: int  # sweeps until one rang nothing more
    redriven: int  # runs rung by all those sweeps together


def due_sweep_cost(runs: int) -> DueSweep:
    """Seed `runs` due runs whose doorbells are lost; count one sweep over them, then sweep
    until a sweep rings nothing more (the doorbells rung stay queued: no worker runs here)."""
    saga_ids = seed_due_runs(runs)
    try:
        with counting() as first:
            redriven = first_redriven = sweeper.sweep_once().redriven
        sweeps = 1
        while redriven < runs and (more := sweeper.sweep_once().redriven):
            sweeps += 1
            redriven += more
        return DueSweep(
            runs=runs, first=first, first_redriven=first_redriven, sweeps=sweeps, redriven=redriven
        )
    finally:
        for queue in settings.BPM_QUEUES:
            django_rq.get_queue(queue).empty()
        for chunk in range(0, len(saga_ids), SEED_BATCH):
            SagaInstance.objects.filter(pk__in=saga_ids[chunk : chunk + SEED_BATCH]).delete()


def seed_due_runs(count: int) -> list[object]:
    """Insert `count` running sagas, each with a first run due an hour ago and no doorbell.

    A fixture, not engine behaviour: rows as a lost doorbell leaves them, written in bulk so that
    seeding 10,000 takes seconds.
    """
    definition = handlers.declare(handlers.TRANSACTIONAL, "bench.local")
    first_step = definition.steps.order_by("position").first()
    due_at = clock.now() - timedelta(hours=1)
    sagas = SagaInstance.objects.bulk_create(
        (
            SagaInstance(definition=definition, definition_name=definition.name, input={})
            for _ in range(count)
        ),
        batch_size=SEED_BATCH,
    )
    StepRun.objects.bulk_create(
        (
            StepRun(saga=saga, step=first_step, direction=Direction.FORWARD, due_at=due_at)
            for saga in sagas
        ),
        batch_size=SEED_BATCH,
    )
    return [saga.pk for saga in sagas]
