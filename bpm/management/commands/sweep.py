from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from bpm import sweeper


class Command(BaseCommand):
    help = "Expire leases, ring again for lost doorbells and flag stalled sagas."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--forever", action="store_true", help="sweep every --interval")
        parser.add_argument("--interval", type=float, default=settings.BPM_SWEEP_INTERVAL)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0:
            raise CommandError("--interval must be a positive number of seconds")
        if not options["forever"]:
            self.stdout.write(str(sweeper.sweep_once()))
            return
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"sweeping every {options['interval']:g}s")
        while not stopping:
            close_old_connections()
            try:
                report = sweeper.sweep_once()
            except Exception as exc:
                self.stderr.write(f"sweep failed: {exc}")
            else:
                if any(vars(report).values()):
                    self.stdout.write(str(report))
            deadline = time.monotonic() + options["interval"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.1)
