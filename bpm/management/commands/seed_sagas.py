"""`manage.py seed_sagas --count N`: load N finished and stuck sagas for measuring at scale.

A test data loader, and the one writer of saga rows besides the engine: it writes rows directly,
already finished or stuck, because a million sagas through the engine's transitions would take
hours (why that is safe: bpm/seeding.py).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpm import seeding

MAX_COUNT = 10_000_000


def bounded(name: str, low: int, high: int) -> Any:
    """Return an argparse type: an integer from `low` to `high`, else an error naming `name`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise CommandError(f"{name} must be a whole number, not {text!r}") from None
        if not low <= value <= high:
            raise CommandError(f"{name} must be from {low:,} to {high:,}, not {value:,}")
        return value

    return parse


class Command(BaseCommand):
    help = (
        "Bulk-load N finished and stuck sagas with their step runs and events (test data: it"
        " writes rows directly, COPY on PostgreSQL; see bpm/seeding.py). Run sync_definitions"
        " first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--count", required=True, type=bounded("--count", 1, MAX_COUNT), help="sagas to add"
        )
        parser.add_argument(
            "--batch",
            type=bounded("--batch", 1, 100_000),
            default=5000,
            help="sagas per transaction (default 5000)",
        )
        parser.add_argument(
            "--days",
            type=bounded("--days", 1, 3650),
            default=90,
            help="spread creation times over this many days before now (default 90)",
        )
        parser.add_argument(
            "--versions",
            type=bounded("--versions", 1, 20),
            default=3,
            help="publish copies of a definition until it has this many versions (default 3)",
        )
        parser.add_argument(
            "--seed", type=bounded("--seed", 0, 2**31), help="random seed, for a repeatable load"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count = options["count"]
        started = time.monotonic()
        step = max(count // 10, options["batch"])

        def progress(done: int) -> None:
            if done % step < options["batch"] or done == count:
                self.stderr.write(f"{done:,} / {count:,} sagas ({time.monotonic() - started:.0f}s)")

        try:
            report = seeding.seed(
                count,
                batch_size=options["batch"],
                days=options["days"],
                versions=options["versions"],
                rng_seed=options["seed"],
                progress=progress,
            )
        except seeding.SeedError as exc:
            raise CommandError(str(exc)) from None
        statuses = ", ".join(f"{status} {n:,}" for status, n in sorted(report.by_status.items()))
        self.stdout.write(
            f"seeded {report.sagas:,} sagas, {report.runs:,} step runs, {report.events:,} events"
            f" in {time.monotonic() - started:.1f}s ({statuses})"
        )
