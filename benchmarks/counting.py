"""Count what a piece of code costs: SQL queries, commits, Redis round trips and commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.client import Pipeline, Redis

from bpm.engine import STATEMENT_SEPARATOR

# Django logs these too; they are not counted as queries (as in tests/bpm/test_costs.py), but
# each is a round trip.
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


@dataclass
class Cost:
    # SQL statements (a string of several, sent in one round trip, counts each), without
    # transaction control...
    queries: int = 0
    # ...and the calls that sent them, BEGIN and COMMIT included: PostgreSQL's round trips
    # (SQLite's are in-process calls).
    round_trips: int = 0
    commits: int = 0
    # A pipeline is one round trip carrying several commands.
    redis_round_trips: int = 0
    redis_commands: int = 0


@contextmanager
def counting() -> Iterator[Cost]:
    """Count the queries, commits and Redis calls made inside the block (this process only).

    Redis is counted on the client, not with INFO commandstats, because the server may be shared
    with other clients whose commands would be counted too.
    """
    cost = Cost()
    original_commit = connection._commit  # type: ignore[attr-defined]
    original_command = Redis.execute_command
    original_execute = Pipeline.execute

    def commit() -> None:
        cost.commits += 1
        original_commit()

    def execute_command(self: Redis, *args: Any, **options: Any) -> Any:
        if not isinstance(self, Pipeline):  # a pipeline's commands are counted when it executes
            cost.redis_round_trips += 1
            cost.redis_commands += 1
        return original_command(self, *args, **options)

    def execute(self: Pipeline, raise_on_error: bool = True) -> Any:
        if self.command_stack:
            cost.redis_round_trips += 1
            cost.redis_commands += len(self.command_stack)
        return original_execute(self, raise_on_error)

    connection._commit = commit  # type: ignore[attr-defined]
    Redis.execute_command = execute_command  # type: ignore[method-assign]
    Pipeline.execute = execute  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            yield cost
        cost.round_trips = len(queries)
        cost.queries = sum(
            len(q["sql"].split(STATEMENT_SEPARATOR))
            for q in queries
            if not q["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
        )
    finally:
        connection._commit = original_commit  # type: ignore[attr-defined]
        Redis.execute_command = original_command  # type: ignore[method-assign]
        Pipeline.execute = original_execute  # type: ignore[method-assign]
