"""Write finished sagas to an archive file; with --delete, delete them once it is written."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from bpm import archive, retention
from bpm.models import FINISHED_STATUSES, SagaInstance


def parse_moment(value: str) -> datetime:
    """Return the moment a --before value names: a date (its midnight) or a time, UTC if naive."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, time()) if day is not None else None
    except ValueError as exc:
        raise CommandError(f"--before {value!r}: {exc}") from None
    if moment is None:
        raise CommandError(
            f"--before {value!r} is not a date or time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)"
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Write every saga finished (COMPLETED, COMPENSATED, ABORTED) before --before to a new "
        "gzip file of JSON lines, with its runs, events and barrier rows. Nothing is deleted "
        "unless --delete is given, and then only after the file is complete."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--before", required=True, help="date or time (UTC unless it says)")
        parser.add_argument("--to", required=True, help="the archive file to create (.jsonl.gz)")
        parser.add_argument(
            "--delete", action="store_true", help="delete the archived sagas once written"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        before = parse_moment(options["before"])
        path = Path(options["to"])
        if not path.parent.is_dir():
            raise CommandError(f"--to {path}: the directory {path.parent} does not exist")
        saga_ids = list(
            SagaInstance.objects.filter(status__in=FINISHED_STATUSES, finished_at__lt=before)
            .order_by("finished_at")
            .values_list("id", flat=True)
        )
        try:
            written = archive.write(path, saga_ids)
        except archive.ArchiveError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"archived {written} sagas finished before {before.isoformat()} to {path}"
        )
        if not options["delete"]:
            return
        batch = settings.BPM_RETAIN_BATCH
        deleted = sum(
            retention.delete(saga_ids[start : start + batch], cutoff=before)
            for start in range(0, len(saga_ids), batch)
        )
        self.stdout.write(f"deleted {deleted} of them, {batch} per transaction")
