"""What the saga management commands share: JSON arguments, the actor, engine errors."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpm import services
from bpm.errors import SagaError


def parse_json(text: str, *, option: str) -> Any:
    """Return the JSON value of an option, or raise a CommandError that says what is wrong."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{option} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def read_json_source(value: str, *, option: str) -> Any:
    """Read JSON from a file path, or from standard input when `value` is '-'."""
    if value == "-":
        return parse_json(sys.stdin.read(), option=option)
    path = Path(value)
    if not path.is_file():
        raise CommandError(f"{option}: no such file {value!r}")
    return parse_json(path.read_text(), option=option)


def actor_from(user: str | None) -> str:
    """Return the actor recorded for whoever runs the command."""
    return f"user:{user or getpass.getuser()}"


class SagaActionCommand(BaseCommand):
    """An operator action on one saga: previews by default, applies with --yes."""

    action = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("saga_id", help="the saga's id (UUID)")
        parser.add_argument("--reason", required=True, help="why; recorded in the timeline")
        parser.add_argument("--user", help="the operator's username, recorded as the actor")
        parser.add_argument(
            "--yes", action="store_true", help="apply the action (without it, only preview)"
        )

    def extra(self, options: dict[str, Any]) -> dict[str, Any]:
        """Return the action-specific keyword arguments."""
        return {}

    def handle(self, *args: Any, **options: Any) -> None:
        call = getattr(services, f"saga_{self.action}")
        try:
            result = call(
                saga_id=options["saga_id"],
                reason=options["reason"],
                actor=actor_from(options["user"]),
                preview=not options["yes"],
                **self.extra(options),
            )
        except SagaError as exc:
            raise CommandError(str(exc)) from None
        plan = result.describe() or ["nothing more will run"]
        if not result.applied:
            self.stdout.write(f"Preview of {self.action} on saga {result.saga.id}:")
            self.stdout.write("\n".join(f"  {line}" for line in plan))
            self.stdout.write("Nothing was changed. Pass --yes to apply.")
            return
        self.stdout.write(
            self.style.SUCCESS(f"{self.action}: saga {result.saga.id} is now {result.saga.status}")
        )
        self.stdout.write("\n".join(f"  {line}" for line in plan))
