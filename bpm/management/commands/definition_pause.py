from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpm import services
from bpm.errors import SagaError
from bpm.management.base import actor_from


class Command(BaseCommand):
    help = (
        "Pause (or with --resume, resume) every unfinished saga of a definition version, and"
        " those started while it is paused (preview unless --yes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the definition's name")
        parser.add_argument("version", type=int, help="the version")
        parser.add_argument("--resume", action="store_true", help="resume instead of pausing")
        parser.add_argument("--reason", required=True, help="why; recorded in the audit trails")
        parser.add_argument("--user", help="the operator's username, recorded as the actor")
        parser.add_argument("--yes", action="store_true", help="apply (without it, preview)")

    def handle(self, *args: Any, **options: Any) -> None:
        call = services.definition_resume if options["resume"] else services.definition_pause
        verb = "resume" if options["resume"] else "pause"
        try:
            result = call(
                name=options["name"],
                version=options["version"],
                reason=options["reason"],
                actor=actor_from(options["user"]),
                preview=not options["yes"],
            )
        except SagaError as exc:
            raise CommandError(str(exc)) from None
        if not result.applied:
            self.stdout.write(
                f"Preview: {verb} {result.definition} would touch {result.sagas} unfinished"
                " saga(s). Nothing was changed. Pass --yes to apply."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(f"{verb}d {result.definition}: {result.sagas} saga(s)")
        )
