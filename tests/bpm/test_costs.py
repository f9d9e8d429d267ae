"""Counts, not timings: commits and queries per step, per start, per sweep."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from testkit import declare, fresh, work

from bpm import clock, retention, services, sweeper
from bpm.declarations import StepDeclaration as Step
from bpm.engine import STATEMENT_SEPARATOR
from bpm.models import SagaStatus, StepRun

pytestmark = pytest.mark.django_db(transaction=True)

# Transaction control is logged as a query too; the budget below counts statements without it.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


@contextmanager
def counting_commits() -> Iterator[list[int]]:
    counted = [0]
    original = connection._commit

    def commit() -> None:
        counted[0] += 1
        original()

    connection._commit = commit
    try:
        yield counted
    finally:
        connection._commit = original


@contextmanager
def counting() -> Iterator[dict[str, int]]:
    """Count commits, statements, round trips and savepoints inside the block.

    The engine sends a step's writes to PostgreSQL as one string of statements (one round trip):
    each is still counted as a statement. SQLite's statements are one call each.
    """
    counts = {"commits": 0, "statements": 0, "round_trips": 0, "savepoints": 0}
    with counting_commits() as commits, CaptureQueriesContext(connection) as queries:
        yield counts
    sqls = [query["sql"].lstrip().upper() for query in queries.captured_queries]
    work = [sql for sql in sqls if not sql.startswith(CONTROL)]
    counts["commits"] = commits[0]
    counts["statements"] = sum(len(sql.split(STATEMENT_SEPARATOR.upper())) for sql in work)
    counts["round_trips"] = len(work)
    counts["savepoints"] = sum(1 for sql in sqls if sql.startswith("SAVEPOINT"))


def run_saga(steps: int, handler: str = "test.local") -> dict[str, int]:
    """Start a saga of `steps` steps of this handler; return what the worker spent on it."""
    name = f"{handler.split('.')[1]}_{steps}"
    declare(name, *(Step(f"s{i}", handler, handler) for i in range(steps)))
    saga = services.saga_start(definition=name, input={}, actor="test")
    with counting() as counts:
        work()
    assert fresh(saga).status == SagaStatus.COMPLETED
    return counts


def per_step(short: dict[str, int], long: dict[str, int], extra_steps: int) -> dict[str, float]:
    return {key: (long[key] - short[key]) / extra_steps for key in short}


def test_a_transactional_step_costs_one_commit(the_world):
    assert run_saga(3)["commits"] == 3


def test_a_transactional_step_costs_at_most_six_statements_and_no_savepoint(the_world, settings):
    settings.BPM_INLINE_MAX_STEPS = 100  # every step of the saga continues inline in one job
    cost = per_step(run_saga(2), run_saga(6), 4)
    # Lock the saga and read the run, enter the barrier, write the run, insert the next run,
    # save the saga, insert the step's events. PostgreSQL gets the barrier with the lock (the
    # worker knows the step it continues) and the four writes in one round trip.
    round_trips = 2 if connection.vendor == "postgresql" else 6
    assert cost == {"commits": 1, "statements": 6, "round_trips": round_trips, "savepoints": 0}


def test_an_at_least_once_step_costs_two_commits(the_world, settings):
    settings.BPM_INLINE_MAX_STEPS = 100
    cost = per_step(run_saga(2, "test.remote"), run_saga(6, "test.remote"), 4)
    # Claim: lock and read, write the run, save the saga, insert the event.
    # Record: lock and read, write the run, insert the next run, save the saga, insert events.
    # PostgreSQL gets each transaction's writes in one round trip.
    round_trips = 4 if connection.vendor == "postgresql" else 9
    assert cost == {"commits": 2, "statements": 9, "round_trips": round_trips, "savepoints": 0}


def test_starting_a_saga_costs_one_commit_and_four_statements(the_world):
    declare("local_1", Step("s0", "test.local", "test.local"))
    services.saga_start(definition="local_1", input={}, actor="test")  # warms the steps' cache
    with counting() as counts:
        services.saga_start(definition="local_1", input={}, actor="test")
    # Resolve the definition, insert the first run, the saga and the events.
    assert counts == {"commits": 1, "statements": 4, "round_trips": 4, "savepoints": 0}


def test_a_sweep_with_nothing_to_do_costs_one_query_per_part(the_world):
    with counting() as counts:
        sweeper.expire_leases()
        sweeper.redrive()
        sweeper.flag_past_deadline()
        sweeper.flag_stalled()
    assert counts == {"commits": 0, "statements": 4, "round_trips": 4, "savepoints": 0}


def test_a_whole_sweep_costs_the_same_however_many_sagas_have_finished(the_world):
    declare("local_1", Step("s0", "test.local", "test.local"))

    def sweep_cost(finished: int) -> dict[str, int]:
        for _ in range(finished):
            services.saga_start(definition="local_1", input={}, actor="test")
        work()
        # Past the rollup's lag, so the totals have something to roll up; retention is due.
        clock.advance(120)
        retention.forget_last_pass()
        with counting() as counts:
            sweeper.sweep_once()
        return counts

    sweep_cost(1)  # the first sweep ever also makes the rollup's first rows
    assert sweep_cost(1) == sweep_cost(30)


def test_a_redrive_costs_the_same_queries_for_one_lost_doorbell_or_many(the_world, redis):
    declare("remote_1", Step("s0", "test.remote", "test.remote"))

    def redrive_cost(lost: int) -> int:
        for _ in range(lost):
            services.saga_start(definition="remote_1", input={}, actor="test")
        redis.flushdb()
        clock.advance(settings.BPM_REDRIVE_GRACE + 1)
        with counting() as counts:
            assert sweeper.redrive() == lost
        StepRun.objects.update(status="CANCELLED")
        return counts["statements"]

    assert redrive_cost(1) == redrive_cost(20)


def test_flagging_many_stalled_sagas_costs_the_same_queries_as_one(the_world):
    declare("remote_1", Step("s0", "test.remote", "test.remote"))

    def flag_cost(stalled: int) -> int:
        for _ in range(stalled):
            services.saga_start(definition="remote_1", input={}, actor="test")
        clock.advance(settings.BPM_STALL_AFTER + 1)
        with counting() as counts:
            assert sweeper.flag_stalled() == stalled
        return counts["statements"]

    assert flag_cost(1) == flag_cost(20)
