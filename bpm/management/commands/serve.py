"""Run the product in production on one machine: what `make serve` starts (docs/deploy.md)."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from bpm import deployment, embedded_redis, redis_connection
from bpm.monitoring import process_slots
from bpm.private_dir import make_private
from bpm.supervisor import Child, Supervisor, manage_py, prefixed_writer, rq_worker


class Command(BaseCommand):
    help = (
        "Run the product in production on this machine, DEBUG off: migrate, sync saga "
        "definitions, collect static files, then gunicorn (WEB_CONCURRENCY processes on BPM_BIND, "
        "serving /static/ too), BPM_WORKERS RQ workers and the sweeper. A process that dies is "
        "restarted; SIGTERM or SIGINT stops everything within BPM_STOP_TIMEOUT seconds."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.check_production_settings()
        try:
            bind = deployment.bind()
            web_processes = deployment.web_concurrency()
            workers = deployment.rq_workers()
            stop_timeout = deployment.stop_timeout()
        except deployment.ConfigurationError as exc:
            raise CommandError(str(exc)) from None

        make_private(settings.VAR_DIR)
        verbosity = options["verbosity"]
        call_command("migrate", interactive=False, verbosity=verbosity)
        call_command("sync_definitions", verbosity=verbosity)
        call_command("collectstatic", interactive=False, verbosity=min(verbosity, 1))
        # Children open their own connections; do not keep an idle one (or a SQLite lock) here.
        connections.close_all()

        redis_socket = (
            embedded_redis.socket_path_from_url(settings.REDIS_CONNECTION["URL"])
            if settings.EMBEDDED_REDIS
            else None
        )
        started_redis = redis_socket is not None and embedded_redis.ensure_running(redis_socket)
        try:
            self.print_banner(bind=bind, web=web_processes, workers=workers)
            children = self.plan_children(workers)
            supervisor = Supervisor(
                children,
                cwd=settings.BASE_DIR,
                env=self.child_environment(),
                write=prefixed_writer(self.stdout, children),
                report=self.stderr.write,
                # The children get the whole timeout; killing what is left takes a moment more.
                stop_timeout=stop_timeout,
                restart=True,
            )
            supervisor.run()
        finally:
            if started_redis and redis_socket is not None:
                self.stdout.write(f"Stopping the embedded Redis at {redis_socket}")
                embedded_redis.stop(redis_socket)
        self.stdout.write("Stopped.")

    def check_production_settings(self) -> None:
        """Refuse to start with DEBUG on, or without SECRET_KEY or ALLOWED_HOSTS."""
        if settings.DEBUG:
            raise CommandError(
                "DEBUG is on: serve runs the product in production, with DEBUG off; unset DEBUG "
                "(`make run` is the development server)"
            )
        if not os.environ.get("SECRET_KEY"):
            raise CommandError("SECRET_KEY must be set (50 random characters or more)")
        if not settings.ALLOWED_HOSTS:
            raise CommandError(
                "ALLOWED_HOSTS must be set: the host names this site answers to, comma-separated "
                "(e.g. ALLOWED_HOSTS=shop.example.com)"
            )

    def plan_children(self, workers: int) -> list[Child]:
        """Return the processes to run, in start order: workers, the sweeper, the web app."""
        queues = list(settings.BPM_QUEUES)
        children = [rq_worker(f"worker-{n}", queues) for n in range(1, workers + 1)]
        children.append(Child("sweeper", manage_py("sweep", "--forever")))
        children.append(Child("web", gunicorn_argv()))
        return children

    def child_environment(self) -> dict[str, str]:
        """Return the children's environment: ours, unbuffered, with VAR_DIR made absolute."""
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BPM_VAR_DIR": str(settings.VAR_DIR),
            # Every process's metrics add up at /metrics (docs/monitoring.md).
            process_slots.ENVIRONMENT_VARIABLE: str(process_slots.prepare(settings.VAR_DIR)),
        }

    def print_banner(self, *, bind: str, web: int, workers: int) -> None:
        """Print what runs where, and warn about the embedded defaults."""
        database = settings.DATABASES["default"]
        engine = database["ENGINE"].rsplit(".", 1)[-1]
        lines = [
            f"Serving on {bind} ({web} gunicorn processes, /static/ from {settings.STATIC_ROOT})",
            f"RQ workers: {workers} on {', '.join(settings.BPM_QUEUES)}; sweeper every "
            f"{settings.BPM_SWEEP_INTERVAL:g}s",
            f"Database: {engine} {database['NAME'] if engine == 'sqlite3' else '(DATABASE_URL)'}",
            f"Redis: {redis_connection.describe()}",
        ]
        self.stdout.write("\n".join(lines))
        if settings.EMBEDDED_REDIS or engine == "sqlite3":
            self.stderr.write(
                "Warning: running on the embedded defaults (SQLite and/or an embedded Redis) "
                f"under {settings.VAR_DIR}. That is supported on one machine; back that "
                "directory up, and set DATABASE_URL and REDIS_URL to add machines "
                "(docs/deploy.md)."
            )
        self.stdout.flush()


def gunicorn_argv() -> list[str]:
    """Return the command line of gunicorn with the production configuration."""
    return [sys.executable, "-m", "gunicorn", "--config", "python:bpm.gunicorn_conf"]
