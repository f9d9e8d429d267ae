"""Where the time per step goes: a profile of the engine running no-op transactional steps.

Run: `BPM_VAR_DIR=var/bench .venv/bin/python benchmarks/profile_steps.py [--sagas 50]` (add
DATABASE_URL / REDIS_URL for PostgreSQL). It prints the SQL of one step by kind, then the
functions that take the most time while an in-process SimpleWorker runs the sagas' steps.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import secrets
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")
# As in bench_engine.py: DEBUG off, a throwaway key for this process only.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from benchmarks import handlers, throughput  # noqa: E402
from benchmarks.bench_engine import positive, prepare  # noqa: E402
from benchmarks.counting import counting  # noqa: E402
from bpm import embedded_redis  # noqa: E402


def statement_kind(sql: str) -> str:
    """Return a query reduced to its verb and table, e.g. 'SELECT bpm_steprun'."""
    verb = sql.split(None, 1)[0].upper()
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql, re.IGNORECASE)
    if table is None:
        return verb  # BEGIN, COMMIT, SAVEPOINT, RELEASE
    lock = " FOR UPDATE" if "FOR UPDATE" in sql.upper() else ""
    return f"{verb} {table.group(1)}{lock}"


def one_saga_by_kind() -> tuple[Counter[str], int]:
    """Return the worker's queries for one 4-step saga, counted by kind, and the step count."""
    throughput.start(handlers.TRANSACTIONAL)
    with CaptureQueriesContext(connection) as queries:
        throughput.work()
    return Counter(statement_kind(q["sql"]) for q in queries.captured_queries), handlers.STEPS


# Where a function's own time goes, by where it is defined or what it is.
OWN_TIME = {
    "database driver (SQL sent, rows read, commits)": ("sqlite3", "psycopg", "CursorWrapper"),
    "Redis socket (send, receive)": ("socket",),
}
# Functions whose time, callees included, says what the engine spends it on.
PARTS = {
    "engine.execute: a step, all of it": "engine.py:execute",
    "  engine._lock_run: lock the saga and read the run (one query)": "engine.py:_lock_run",
    "  barrier.enter: the barrier row (INSERT … ON CONFLICT DO NOTHING)": "barrier.py:enter",
    "  engine._call: the no-op handler under its timeout": "engine.py:_call",
    "  engine.record: store the outcome, plan, save": "engine.py:record",
    "    engine.follow_plan: plan, schedule the next": "engine.py:follow_plan",
    "    engine.latest_runs: read every run of the saga (once per job)": "engine.py:latest_runs",
    "    engine._save: the changed rows, and the events in one insert": "engine.py:_save",
    "rq perform_job: RQ's bookkeeping around each job and the job": "base.py:perform_job",
}


def where_time_goes(stats: pstats.Stats, total: float) -> list[str]:
    """Return lines of the share of the run's time in the driver, Redis and engine parts."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    raw = stats.stats  # type: ignore[attr-defined]
    lines = []
    for label, markers in OWN_TIME.items():
        own = sum(
            entry[2]
            for (file, _, name), entry in raw.items()
            if any(m in file or m in name for m in markers)
        )
        lines.append(f"  {own / total:6.1%}  {label} (own time)")
    for label, key in PARTS.items():
        module, function = key.split(":")
        cumulative = sum(
            entry[3]
            for (file, _, name), entry in raw.items()
            if file.endswith(module) and name == function
        )
        lines.append(f"  {cumulative / total:6.1%}  {label}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sagas", type=positive, default=50)
    parser.add_argument("--top", type=positive, default=25)
    args = parser.parse_args()
    started_redis = prepare()
    try:
        profile(args.sagas, args.top)
    finally:
        if started_redis is not None:
            embedded_redis.stop(started_redis)


def profile(sagas: int, top: int) -> None:
    """Print the SQL of one saga by kind, then profile `sagas` sagas' steps."""
    handlers.declare_all()
    throughput.steps_per_second(handlers.TRANSACTIONAL, 5)  # warm-up

    kinds, steps = one_saga_by_kind()
    print(f"database: {connection.vendor}; queries of one {steps}-step saga, by kind:")
    for kind, count in kinds.most_common():
        print(f"  {count:4d}  {kind}")
    print(f"  {sum(kinds.values()):4d}  in all ({sum(kinds.values()) / steps:.2f} per step)")

    for _ in range(sagas):
        throughput.start(handlers.TRANSACTIONAL)
    profiler = cProfile.Profile()
    with counting() as cost:
        profiler.enable()
        elapsed = throughput.work()
        profiler.disable()
    total = sagas * steps
    print(
        f"\n{total} steps in {elapsed:.2f}s ({total / elapsed:.0f} steps/s); per step:"
        f" {cost.queries / total:.2f} queries, {cost.commits / total:.2f} commits,"
        f" {cost.redis_round_trips / total:.2f} Redis round trips"
    )
    print("share of the run's time:")
    print("\n".join(where_time_goes(pstats.Stats(profiler), elapsed)))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
