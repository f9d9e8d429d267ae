"""The checks behind /readyz: can this deployment take work and carry it through?

Each check answers in its own time and reports how long it took; none writes anything. The
database is asked first, since the migrations check needs it; Redis too, since the workers' and
the sweeper's checks read from it. A check that cannot run says which one it waited for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import django_rq
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from redis import Redis
from redis.exceptions import RedisError
from rq.utils import as_text
from rq.worker import Worker
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from bpm import clock, dispatch
from bpm.monitoring import heartbeat
from bpm.outages import DATABASE_ERRORS

log = logging.getLogger(__name__)

# Seconds Redis may take to connect or answer before /readyz says it is down.
REDIS_TIMEOUT = 1.0
# How many sweep intervals may pass without a sweep before the sweeper counts as gone.
SWEEPER_INTERVALS = 3

# Set once every migration is applied: migrations are not unapplied under a running process.
_migrated = False


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    seconds: float

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 6)}


def timed(probe: Callable[[], tuple[bool, str]]) -> Check:
    """Run `probe` and return its answer with the time it took."""
    started = time.perf_counter()
    ok, detail = probe()
    return Check(ok, detail, time.perf_counter() - started)


def skipped(because: str) -> Check:
    return Check(False, f"not checked: {because}", 0.0)


def unreachable(service: str, exc: Exception) -> str:
    """Log why `service` is unreachable; return a detail that names the error's kind only.

    /readyz answers anyone who reaches the site: the error's text (host names, ports, the
    database user) goes to the log, not into the answer.
    """
    log.warning("/readyz: %s is unreachable: %s", service, exc)
    return f"{service} is unreachable ({type(exc).__name__})"


def run_checks() -> dict[str, Check]:
    """Return every readiness check by name, in the order they ran."""
    checks = {"database": timed(database_answers)}
    if checks["database"].ok:
        checks["migrations"] = timed(migrations_applied)
    else:
        checks["migrations"] = skipped("the database is unreachable")
    connection = probe_connection()
    checks["redis"] = timed(lambda: redis_answers(connection))
    if checks["redis"].ok:
        checks["workers"] = timed(lambda: workers_serve_every_queue(connection))
        checks["sweeper"] = timed(lambda: sweeper_is_fresh(connection))
    else:
        checks["workers"] = skipped("Redis is unreachable")
        checks["sweeper"] = skipped("Redis is unreachable")
    return checks


def database_answers() -> tuple[bool, str]:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DATABASE_ERRORS as exc:
        # Dropped now, so the next probe connects afresh once the database is back.
        connection.close_if_unusable_or_obsolete()
        return False, unreachable("the database", exc)
    return True, f"{connection.vendor} answers"


def migrations_applied() -> tuple[bool, str]:
    global _migrated
    if _migrated:
        return True, "every migration is applied"
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DATABASE_ERRORS as exc:
        return False, unreachable("the database", exc)
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        more = f" and {len(plan) - 5} more" if len(plan) > 5 else ""
        return False, f"{len(plan)} migration(s) not applied: {names}{more}"
    _migrated = True
    return True, "every migration is applied"


def probe_connection() -> Redis:
    """Return a connection to the queues' Redis that gives up after REDIS_TIMEOUT seconds."""
    connection = django_rq.get_connection(settings.BPM_QUEUES[0])
    connection.connection_pool.connection_kwargs.update(
        socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )
    return connection


def redis_answers(connection: Redis) -> tuple[bool, str]:
    try:
        connection.ping()
    except RedisError as exc:
        return False, unreachable("Redis", exc)
    return True, "Redis answers"


def live_workers(connection: Redis) -> dict[str, int]:
    """Return how many live workers serve each queue of BPM_QUEUES.

    A worker is live when it is registered and heartbeats, as the sweeper judges it
    (`dispatch._alive_workers`): registered on a queue is not enough, a SIGKILLed worker stays
    registered until RQ's maintenance cleans it up.
    """
    queues = list(settings.BPM_QUEUES)
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.smembers(WORKERS_BY_QUEUE_KEY % queue)
        replies = pipe.execute()
    prefix = Worker.redis_worker_namespace_prefix
    names_by_queue = {
        queue: {as_text(key).removeprefix(prefix) for key in keys}
        for queue, keys in zip(queues, replies, strict=True)
    }
    alive = dispatch._alive_workers(connection, set().union(*names_by_queue.values()))
    return {queue: len(names & alive) for queue, names in names_by_queue.items()}


def workers_serve_every_queue(connection: Redis) -> tuple[bool, str]:
    try:
        counts = live_workers(connection)
    except RedisError as exc:
        return False, unreachable("Redis", exc)
    idle = [queue for queue, count in counts.items() if count == 0]
    served = ", ".join(f"{queue}: {count}" for queue, count in counts.items())
    if idle:
        return False, f"no live worker serves {', '.join(idle)} (live workers by queue: {served})"
    return True, f"live workers by queue: {served}"


def sweeper_is_fresh(connection: Redis) -> tuple[bool, str]:
    try:
        beat = heartbeat.read(connection)
    except RedisError as exc:
        return False, unreachable("Redis", exc)
    limit = SWEEPER_INTERVALS * settings.BPM_SWEEP_INTERVAL
    if beat.last_run is None:
        return False, "the sweeper has not swept since Redis started: is `sweep --forever` running?"
    age = clock.now().timestamp() - beat.last_run
    if age > limit:
        return False, f"the sweeper last swept {age:.1f}s ago, more than {limit:g}s"
    return True, f"the sweeper swept {max(age, 0.0):.1f}s ago"
