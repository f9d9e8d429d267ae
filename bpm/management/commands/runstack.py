"""Run the whole product on this machine for development: what `make run` starts."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from bpm import embedded_redis, redis_connection
from bpm.monitoring import process_slots
from bpm.private_dir import make_private
from bpm.supervisor import (
    Child,
    Supervisor,
    describe_exit,
    manage_py,
    prefixed_writer,
    rq_worker,
)

STOP_TIMEOUT = 10.0
# The banner is printed again once the web server answers, so that it is the last thing on the
# screen rather than scrolled away by the processes' start-up lines; and kept in this file.
BANNER_FILE = "run.txt"
READY_TIMEOUT = 120.0
WORKERS = 2
DEV_USERNAME = "admin"
DEV_PASSWORD = "admin"
# Development users to try each role with; the password is the username. (username, group, staff)
DEV_USERS = (
    ("operator", "operators", True),
    ("viewer", "viewers", True),
    # Two designers, so that one can approve what the other composed.
    ("designer", "designers", True),
    ("designer2", "designers", True),
    ("client", "clients", False),
    # Works the human tasks of review_large_order in the dashboard's inbox (a viewer too).
    ("reviewer", "reviewers", True),
)


class Command(BaseCommand):
    help = (
        "Run the product for development: migrate, sync saga definitions, start the embedded Redis "
        "(when REDIS_URL is unset), two RQ workers, the sweeper, the web server on 127.0.0.1 and "
        "the demonstrations the site names in BPM_RUNSTACK_DEMO_COMMANDS. Ctrl-C stops everything."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="Port of the web server on 127.0.0.1 (default: $PORT, else 8000).",
        )
        parser.add_argument(
            "--no-demo",
            action="store_true",
            help="Do not start the demonstrations of BPM_RUNSTACK_DEMO_COMMANDS (this site's"
            " demo_trickle places demo orders).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port = check_port(options["port"]) if options["port"] is not None else port_from_env()
        children = self.plan_children(port=port, demo=not options["no_demo"])
        self.check_commands_exist(children)

        make_private(settings.VAR_DIR)
        verbosity = options["verbosity"]
        call_command("migrate", interactive=False, verbosity=verbosity)
        call_command("sync_definitions", verbosity=verbosity)
        dev_login = self.ensure_dev_superuser() if settings.DEBUG else False
        if settings.DEBUG:
            self.ensure_dev_users()
        # Children open their own connections; do not keep an idle one (or a SQLite lock) here.
        connections.close_all()

        redis_socket = self.redis_socket()
        started_redis = redis_socket is not None and embedded_redis.ensure_running(redis_socket)
        try:
            banner = self.print_banner(port=port, dev_login=dev_login, started_redis=started_redis)
            threading.Thread(
                target=self.repeat_banner_when_up,
                args=(f"http://127.0.0.1:{port}/admin/login/", banner),
                name="banner",
                daemon=True,
            ).start()
            self.run_children(children)
        finally:
            if started_redis and redis_socket is not None:
                self.stdout.write(f"Stopping the embedded Redis at {redis_socket}")
                embedded_redis.stop(redis_socket)

    def plan_children(self, *, port: int, demo: bool) -> list[Child]:
        """Return the processes to run, in start order."""
        queues = list(settings.BPM_QUEUES)
        children = [rq_worker(f"worker-{n}", queues) for n in range(1, WORKERS + 1)]
        children.append(Child("sweeper", manage_py("sweep", "--forever")))
        children.append(Child("web", manage_py("runserver", f"127.0.0.1:{port}", "--noreload")))
        if demo:
            children.extend(
                Child(name, manage_py(*args), may_finish=True)
                for name, args in demo_commands().items()
            )
        return children

    def check_commands_exist(self, children: list[Child]) -> None:
        """Refuse to start anything when a command that runstack needs is missing."""
        available = get_commands()
        needed = ["sync_definitions", *(child.command_line()[2] for child in children)]
        missing = [name for name in needed if name not in available]
        if missing:
            demos = {args[0] for args in demo_commands().values()}
            hint = " (or pass --no-demo)" if demos.intersection(missing) else ""
            raise CommandError(f"Missing management command(s): {', '.join(missing)}{hint}")

    def ensure_dev_superuser(self) -> bool:
        """Create admin/admin when no superuser exists; return whether admin/admin logs in."""
        user_model = get_user_model()
        if not user_model.objects.filter(is_superuser=True).exists():
            if user_model.objects.filter(username=DEV_USERNAME).exists():
                self.stderr.write(
                    f"No superuser exists and the user {DEV_USERNAME!r} is not one; "
                    "create a superuser with `manage.py createsuperuser`."
                )
                return False
            user_model.objects.create_superuser(
                username=DEV_USERNAME, email="admin@example.com", password=DEV_PASSWORD
            )
            self.stdout.write(f"Created the development superuser {DEV_USERNAME!r}.")
        user = user_model.objects.filter(username=DEV_USERNAME, is_superuser=True).first()
        return user is not None and user.check_password(DEV_PASSWORD)

    def ensure_dev_users(self) -> None:
        """Create the development users of each group (DEV_USERS) that do not exist yet."""
        user_model = get_user_model()
        for username, group, staff in DEV_USERS:
            if user_model.objects.filter(username=username).exists():
                continue
            user = user_model.objects.create_user(
                username=username, password=username, is_staff=staff
            )
            user.groups.add(Group.objects.get(name=group))
            if group in settings.BPM_TASK_GROUPS:
                user.groups.add(Group.objects.get(name="viewers"))
            self.stdout.write(f"Created the development user {username!r} in {group!r}.")

    def redis_socket(self) -> Path | None:
        """Return the embedded Redis socket, or None when an external Redis is configured."""
        if not settings.EMBEDDED_REDIS:
            return None
        return embedded_redis.socket_path_from_url(settings.REDIS_CONNECTION["URL"])

    def print_banner(self, *, port: int, dev_login: bool, started_redis: bool) -> str:
        """Print where to go and how to log in, write it to BANNER_FILE, and return it."""
        base = f"http://127.0.0.1:{port}"
        if dev_login:
            login = (
                f"{DEV_USERNAME} / {DEV_PASSWORD}  "
                "(DEVELOPMENT ONLY: created because DEBUG is on; never use it in production)"
            )
        else:
            login = "your superuser (create one with `manage.py createsuperuser`)"
        if settings.DEBUG:
            roles = ", ".join(f"{name}/{name} ({group})" for name, group, _ in DEV_USERS)
            login += f"\n              or {roles}"
        if settings.EMBEDDED_REDIS:
            redis = f"embedded ({'started' if started_redis else 'already running'}) "
            redis += redis_connection.describe()
        else:
            redis = redis_connection.describe()
        database = settings.DATABASES["default"]
        lines = [
            "",
            f"  Dashboard   {base}/admin/dashboard/",
            f"  Admin       {base}/admin/",
            f"  API         {base}/api/docs/",
            f"  Queues      {base}/django-rq/",
            f"  Log in as   {login}",
            f"  Database    {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}",
            f"  Redis       {redis}",
            "  Ctrl-C stops everything.",
            "",
        ]
        banner = "\n".join(lines)
        self.stdout.write(self.style.SUCCESS(banner))
        self.stdout.flush()
        path = Path(settings.VAR_DIR) / BANNER_FILE
        path.write_text(banner.strip("\n") + "\n")
        path.chmod(0o600)
        return banner

    def repeat_banner_when_up(
        self, url: str, banner: str, timeout: float = READY_TIMEOUT, settle: float = 1.0
    ) -> bool:
        """Print the banner again once `url` answers (after `settle` seconds more, for the other
        processes' start-up lines); return whether it did within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers, even if not 200
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        else:
            return False
        time.sleep(settle)
        ready = f"\n  Ready. (This is also in {Path(settings.VAR_DIR) / BANNER_FILE}.)"
        self.stdout.write(self.style.SUCCESS(ready + banner))
        self.stdout.flush()
        return True

    def run_children(self, children: list[Child]) -> None:
        """Start the children, supervise them until a signal or a failure, then stop them all."""
        supervisor = Supervisor(
            children,
            cwd=settings.BASE_DIR,
            env=self.child_environment(),
            write=prefixed_writer(self.stdout, children),
            report=self.stderr.write,
            stop_timeout=STOP_TIMEOUT,
        )
        failed = supervisor.run()
        if failed is not None:
            raise CommandError(
                f"{failed.name} ({' '.join(failed.command_line()[2:])}) "
                f"{describe_exit(failed.returncode)}; stopped the other processes."
            )
        self.stdout.write("Stopped.")

    def child_environment(self) -> dict[str, str]:
        """Return the children's environment: ours, unbuffered, with VAR_DIR made absolute.

        The children share a fresh Prometheus multiprocess directory, so /metrics adds up what
        the workers recorded (docs/monitoring.md).
        """
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BPM_VAR_DIR": str(settings.VAR_DIR),
            process_slots.ENVIRONMENT_VARIABLE: str(process_slots.prepare(settings.VAR_DIR)),
        }


def demo_commands() -> dict[str, list[str]]:
    """Return the demonstrations to start, {name: [command, *arguments]}, from the settings.

    The engine knows no app that uses it: the site names its demo processes in
    BPM_RUNSTACK_DEMO_COMMANDS (none when unset).
    """
    configured: Any = getattr(settings, "BPM_RUNSTACK_DEMO_COMMANDS", {})
    if not isinstance(configured, dict) or not all(
        isinstance(name, str)
        and name
        and isinstance(args, list | tuple)
        and args
        and all(isinstance(arg, str) for arg in args)
        for name, args in configured.items()
    ):
        raise CommandError(
            "BPM_RUNSTACK_DEMO_COMMANDS must map each process name to a non-empty list of"
            f" strings, a management command and its arguments; it is {configured!r}"
        )
    return {name: list(args) for name, args in configured.items()}


def port_from_env() -> int:
    """Return the web server's port from $PORT, or 8000."""
    value = os.environ.get("PORT", "8000")
    try:
        return check_port(int(value))
    except ValueError:
        raise CommandError(f"PORT={value!r} is not a port number") from None


def check_port(port: int) -> int:
    """Return port if it is a valid TCP port number."""
    if not 0 < port < 65536:
        raise CommandError(f"{port} is not a port number (1-65535)")
    return port
