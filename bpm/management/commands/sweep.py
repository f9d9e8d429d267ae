"""The sweeper's command: once, or --forever, surviving database and Redis outages."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connections

from bpm import sweeper
from bpm.monitoring import heartbeat, readiness

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Expire leases, ring again for lost doorbells and flag stalled sagas."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--forever", action="store_true", help="sweep every --interval")
        parser.add_argument("--interval", type=float, default=settings.BPM_SWEEP_INTERVAL)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0:
            raise CommandError("--interval must be a positive number of seconds")
        if not options["forever"]:
            self.stdout.write(str(sweep_and_beat()))
            return
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # Logged, not printed: a long-running process's lines follow BPM_LOG_FORMAT.
        log.info("sweeping every %gs", options["interval"])
        while not stopping:
            try:
                # Drops a connection that failed or outlived DATABASE_CONN_MAX_AGE; a persistent
                # one whose backend died is replaced at its first query (CONN_HEALTH_CHECKS).
                close_old_connections()
                report = sweep_and_beat()
            except Exception:
                # The database or Redis is down, or a backend was terminated: whatever the
                # sweep did is committed or rolled back step by step, so the next sweep simply
                # starts over, on a fresh connection, after the usual wait.
                log.exception("sweep failed; next try in %gs", options["interval"])
                self.close_connections()
            else:
                if any(vars(report).values()):
                    log.info("swept: %s", report)
            deadline = time.monotonic() + options["interval"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.1)

    @staticmethod
    def close_connections() -> None:
        """Close every database connection, broken or not, without raising."""
        for connection in connections.all(initialized_only=True):
            try:
                connection.close()
            except Exception:
                log.warning("could not close the %r database connection", connection.alias)


def sweep_and_beat() -> sweeper.SweepReport:
    """Sweep once, then record the sweep's heartbeat in Redis for /readyz and /metrics."""
    report = sweeper.sweep_once()
    heartbeat.beat(
        readiness.probe_connection(),
        leases_expired=report.leases_expired,
        redriven=report.redriven,
    )
    return report
