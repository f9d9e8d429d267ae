"""Bring back the sagas of an archive written by archive_sagas or the sweeper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpm import archive


class Command(BaseCommand):
    help = (
        "Restore the sagas of an archive file (.jsonl.gz) with their runs, events and barrier "
        "rows. A saga already present is left as it is, so restoring twice is harmless."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="an archive written by archive_sagas or the sweeper")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            report = archive.restore(path)
        except archive.ArchiveError as exc:
            raise CommandError(f"{path}: {exc}") from None
        self.stdout.write(str(report))
