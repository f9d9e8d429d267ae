"""Batch repairs at scale: 10,000 stuck sagas retried by one batch through real rqworkers.

Run `make bench-batches` (or `make bench-batches ARGS=--quick`), which is:
`BPM_VAR_DIR=var/bench .venv/bin/python benchmarks/bench_batches.py [--quick] [--sagas N]`
on the embedded SQLite and Redis, or on the DATABASE_URL / REDIS_URL given. Like bench_engine.py
it migrates that database and empties that Redis database first: point it at scratch ones.
It seeds N sagas stuck on their first step (benchmarks/stuck_sagas.py), starts --workers rqworker
processes, makes one batch retrying every one of them (bpm.batches) and prints how fast the batch
settled its sagas (with --until-completed, also how long until every saga completed) and what one
saga costs the batch in queries and commits (counted in this process over a sample). It asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

import django

django.setup()

from django.conf import settings  # noqa: E402

from benchmarks import counting, handlers, processes  # noqa: E402
from benchmarks.bench_engine import prepare  # noqa: E402
from benchmarks.stuck_sagas import seed_stuck  # noqa: E402
from bpm import batches, embedded_redis  # noqa: E402
from bpm.models import Batch, BatchStatus, SagaInstance, SagaStatus  # noqa: E402

NAME = "bench_batch"
COST_SAMPLE = 200
TIMEOUT = 3600


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 sagas instead of 10,000")
    parser.add_argument("--sagas", type=int, help="stuck sagas to repair (default 10000)")
    parser.add_argument("--workers", type=int, default=2, help="rqworker processes (default 2)")
    parser.add_argument(
        "--until-completed",
        action="store_true",
        help="also wait until every retried saga has run its steps (they share the workers)",
    )
    args = parser.parse_args(argv)
    if args.sagas is None:
        args.sagas = 300 if args.quick else 10_000
    return args


def clean() -> None:
    Batch.objects.filter(reason__startswith="benchmark").delete()
    SagaInstance.objects.filter(definition_name=NAME).delete()


def cost_per_saga() -> tuple[float, float]:
    """Return the queries and commits one saga costs a batch retry, in this process."""
    definition = handlers.declare(NAME, "bench.local", steps=2)
    seed_stuck(definition, COST_SAMPLE, {}, key="cost")
    batch = batches.batch_create(
        query={"definition": NAME, "status": "STUCK"},
        action="retry",
        reason="benchmark: cost",
        actor="user:bench",
    )
    with counting.counting() as cost:
        batches.batch_work(batch_id=batch.pk, seconds=TIMEOUT)
    clean()
    return cost.queries / COST_SAMPLE, cost.commits / COST_SAMPLE


def wait(done: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > TIMEOUT:
            raise RuntimeError(f"{what} did not happen within {TIMEOUT}s")
        time.sleep(0.05)
    return time.monotonic()


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started_redis = prepare()
    try:
        clean()
        queries, commits = cost_per_saga()
        definition = handlers.declare(NAME, "bench.local", steps=2)
        seeded = time.monotonic()
        seed_stuck(definition, args.sagas, {})
        print(f"seeded {args.sagas} stuck sagas in {time.monotonic() - seeded:.1f}s", flush=True)
        with processes.workers(args.workers, settings.VAR_DIR / "logs"):
            begun = time.monotonic()
            batch = batches.batch_create(
                query={"definition": NAME, "status": "STUCK"},
                action="retry",
                reason="benchmark",
                actor="user:bench",
            )
            made = time.monotonic()
            settled = wait(
                lambda: Batch.objects.filter(pk=batch.pk, status=BatchStatus.FINISHED).exists(),
                "the batch to finish",
            )
            completed = None
            if args.until_completed:
                completed = wait(
                    lambda: (
                        not SagaInstance.objects.filter(definition_name=NAME)
                        .exclude(status=SagaStatus.COMPLETED)
                        .exists()
                    ),
                    "every saga to complete",
                )
        batch.refresh_from_db()
        figures = {
            "sagas": args.sagas,
            "workers": args.workers,
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "create_s": round(made - begun, 2),
            "batch_sagas_per_s": round(args.sagas / (settled - begun), 1),
            "batch_s": round(settled - begun, 1),
            "all_completed_s": None if completed is None else round(completed - begun, 1),
            "done": batch.done,
            "refused": batch.refused,
            "failed": batch.failed,
            "queries_per_saga": round(queries, 1),
            "commits_per_saga": round(commits, 2),
        }
        clean()
    finally:
        if started_redis is not None:
            embedded_redis.stop(started_redis)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
