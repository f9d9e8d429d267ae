"""Counts, not timings: commits and queries per step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from testkit import declare, fresh, work

from bpm import services
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


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


def run_local_saga(steps: int) -> tuple[int, int]:
    """Start a saga of `steps` transactional steps; return (commits, queries) the worker used."""
    name = f"local_{steps}"
    declare(name, *(Step(f"s{i}", "test.local", "test.local") for i in range(steps)))
    saga = services.saga_start(definition=name, input={}, actor="test")
    with counting_commits() as commits, CaptureQueriesContext(connection) as queries:
        work()
    assert fresh(saga).status == SagaStatus.COMPLETED
    return commits[0], len(queries)


def test_a_transactional_step_costs_one_commit(the_world):
    commits, _ = run_local_saga(3)
    assert commits == 3


def test_queries_per_step_do_not_grow_with_the_length_of_the_saga(the_world):
    _, short = run_local_saga(2)
    _, long = run_local_saga(6)
    per_step = (long - short) / 4
    assert per_step == (long - short) // 4
    assert per_step <= 20  # 18 on SQLite today: lock, claim, barrier savepoint, record, plan
