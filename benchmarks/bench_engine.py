"""The engine's benchmarks: every figure of its contract against its baseline, in one run.

Run `make bench` (or `make bench ARGS=--quick`), which is:
`BPM_VAR_DIR=var/bench .venv/bin/python benchmarks/bench_engine.py [--quick] [--sagas 200]`
on the embedded SQLite and Redis, or on the DATABASE_URL / REDIS_URL given. It migrates that
database and empties that Redis database first: point it at scratch ones. It prints a table, then
one JSON line of every figure; it asserts nothing. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")
# DEBUG stays off, as in production (with it on Django keeps every query). The process and its
# workers serve no request and sign nothing that outlives them, so a throwaway key is enough.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

import django  # noqa: E402

django.setup()

import django_rq  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from benchmarks import suite  # noqa: E402
from bpm import embedded_redis  # noqa: E402
from bpm.models import SagaInstance  # noqa: E402


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse(argv: list[str] | None = None) -> suite.Options:
    """Return the options: --quick's small counts, or the full run's, each overridable."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: under 2 minutes")
    for field in dataclasses.fields(suite.Options):
        if field.type in ("int", int):
            flag = "--" + field.name.replace("_", "-")
            parser.add_argument(
                flag,
                type=positive,
                help=f"default {field.default}, --quick {getattr(suite.QUICK, field.name)}",
            )
    args = parser.parse_args(argv)
    base = suite.QUICK if args.quick else suite.Options()
    chosen = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(suite.Options)
        if getattr(args, field.name, None) is not None
    }
    return dataclasses.replace(base, log_dir=settings.VAR_DIR / "logs", **chosen)


def prepare() -> Path | None:
    """Start the embedded Redis if it is the one configured, migrate, and empty Redis.

    Returns the socket of the embedded Redis when this call started it, for `main` to stop.
    """
    started = None
    if settings.EMBEDDED_REDIS:
        socket = embedded_redis.socket_path_from_url(settings.REDIS_CONNECTION["URL"])
        started = socket if embedded_redis.ensure_running(socket) else None
    call_command("migrate", verbosity=0)
    django_rq.get_connection(settings.BPM_QUEUES[0]).flushdb()
    SagaInstance.objects.filter(definition_name__startswith="bench_").delete()
    return started


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    started_redis = prepare()
    try:
        figures = suite.measure(options, progress=lambda line: print(line, flush=True))
        SagaInstance.objects.filter(definition_name__startswith="bench_").delete()
    finally:
        if started_redis is not None:
            embedded_redis.stop(started_redis)
    print(suite.report(figures, options))


if __name__ == "__main__":
    main()
