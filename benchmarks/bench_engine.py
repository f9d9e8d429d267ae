"""Steps per second through the engine, against raw RQ jobs and raw database commits.

Run: `BPM_VAR_DIR=var/bench .venv/bin/python benchmarks/bench_engine.py [--sagas 200]`
(add DATABASE_URL / REDIS_URL to measure PostgreSQL and a real Redis). Everything runs in this
process with an RQ SimpleWorker, so the figures compare like with like; it prints figures and
ratios and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")

import django

django.setup()

import django_rq  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bpm import definitions, registry, services  # noqa: E402
from bpm.declarations import SagaDeclaration, StepDeclaration  # noqa: E402
from bpm.models import SagaInstance, SagaStatus  # noqa: E402

STEPS = 4


@registry.handler("bench.local", transactional=True)
def local_step(ctx):
    return {"n": ctx.attempt}


@registry.handler("bench.remote")
def remote_step(ctx):
    return {"n": ctx.attempt}


def work() -> None:
    worker = django_rq.get_worker(*settings.BPM_QUEUES, worker_class="rq.worker.SimpleWorker")
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")


def timed(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def raw_rq_jobs(count: int) -> float:
    queue = django_rq.get_queue("default")
    for _ in range(count):
        queue.enqueue("bpm.clock.now")  # the cheapest importable job
    return timed(work)


def raw_commits(count: int) -> float:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_commit (id integer)")

    def commit_many() -> None:
        for i in range(count):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_commit (id) VALUES (%s)", [i])

    elapsed = timed(commit_many)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_commit")
    return elapsed


def engine_sagas(handler: str, count: int, inline_steps: int) -> float:
    settings.BPM_INLINE_MAX_STEPS = inline_steps
    name = f"bench_{handler.split('.')[1]}"
    steps = tuple(StepDeclaration(f"s{i}", handler) for i in range(STEPS))
    definitions.sync_declaration(SagaDeclaration(name=name, title=name, steps=steps))
    sagas = [services.saga_start(definition=name, input={}, actor="bench") for _ in range(count)]
    elapsed = timed(work)
    done = SagaInstance.objects.filter(pk__in=[s.pk for s in sagas], status=SagaStatus.COMPLETED)
    assert done.count() == count, "not every benchmark saga completed"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sagas", type=int, default=200)
    count = parser.parse_args().sagas
    if settings.EMBEDDED_REDIS:
        from bpm import embedded_redis

        embedded_redis.ensure_running(embedded_redis.socket_path_from_url(settings.REDIS_URL))
    call_command("migrate", verbosity=0)
    django_rq.get_connection("default").flushdb()
    steps = count * STEPS
    print(f"database: {connection.vendor}; redis: {settings.REDIS_URL}; {count} sagas x {STEPS}")
    rq_time = raw_rq_jobs(steps)
    commit_time = raw_commits(steps)
    rows = [
        ("raw RQ jobs (trivial)", rq_time),
        ("raw database commits", commit_time),
        ("engine, transactional steps, inline", engine_sagas("bench.local", count, 8)),
        ("engine, transactional steps, no inline", engine_sagas("bench.local", count, 1)),
        ("engine, at-least-once steps, inline", engine_sagas("bench.remote", count, 8)),
    ]
    print(f"{'':42} {'steps/s':>10} {'ms/step':>9} {'x RQ job':>9} {'x commit':>9}")
    for label, elapsed in rows:
        per_step = elapsed / steps
        print(
            f"{label:42} {steps / elapsed:10.0f} {per_step * 1000:9.2f}"
            f" {per_step / (rq_time / steps):9.2f} {per_step / (commit_time / steps):9.2f}"
        )
    SagaInstance.objects.filter(definition_name__startswith="bench_").delete()


if __name__ == "__main__":
    main()
