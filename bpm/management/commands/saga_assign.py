from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpm import services
from bpm.errors import SagaError
from bpm.management.base import actor_from


class Command(BaseCommand):
    help = (
        "Assign a saga to an operator (--to USERNAME, or --nobody), acknowledge it"
        " (--acknowledge) or comment on it (--comment TEXT)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("saga_id", help="the saga's id (UUID)")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--to", help="the operator's username")
        who.add_argument("--nobody", action="store_true", help="unassign")
        who.add_argument("--acknowledge", action="store_true", help="acknowledge a stuck saga")
        who.add_argument("--comment", help="a comment, plain text (at most 2000 characters)")
        parser.add_argument("--reason", default="", help="why (recorded with an assignment)")
        parser.add_argument("--user", help="your username, recorded as the actor")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_from(options["user"])
        saga_id = options["saga_id"]
        try:
            if options["acknowledge"]:
                services.saga_acknowledge(saga_id=saga_id, actor=actor)
                done = "acknowledged"
            elif options["comment"] is not None:
                services.saga_comment(saga_id=saga_id, text=options["comment"], actor=actor)
                done = "commented on"
            else:
                saga = services.saga_assign(
                    saga_id=saga_id,
                    assignee=None if options["nobody"] else options["to"],
                    reason=options["reason"],
                    actor=actor,
                )
                who = saga.assignee.get_username() if saga.assignee else "nobody"
                done = f"assigned to {who}"
        except SagaError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"saga {saga_id} {done}"))
