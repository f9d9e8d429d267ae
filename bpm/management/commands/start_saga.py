from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpm import clock, services
from bpm.errors import SagaError
from bpm.management.base import actor_from, parse_json, read_json_source


class Command(BaseCommand):
    help = "Start a saga from a JSON argument or file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("definition", help="the saga definition's name, e.g. place_order")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--input", help="the input, a JSON object")
        source.add_argument("--input-file", help="a file holding the input ('-': stdin)")
        parser.add_argument(
            "--definition-version", type=int, help="a definition version (default: latest)"
        )
        parser.add_argument("--business-key", default="", help="e.g. the order number")
        parser.add_argument("--idempotency-key", help="a repeat with this key starts nothing")
        parser.add_argument("--deadline", type=float, help="seconds before it counts as stuck")
        parser.add_argument("--user", help="recorded as the actor")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["input"] is not None:
            value = parse_json(options["input"], option="--input")
        else:
            value = read_json_source(options["input_file"], option="--input-file")
        deadline = None
        if options["deadline"] is not None:
            if options["deadline"] <= 0:
                raise CommandError("--deadline must be a positive number of seconds")
            deadline = clock.now() + timedelta(seconds=options["deadline"])
        try:
            saga = services.saga_start(
                definition=options["definition"],
                input=value,
                version=options["definition_version"],
                business_key=options["business_key"],
                idempotency_key=options["idempotency_key"],
                deadline=deadline,
                actor=actor_from(options["user"]),
            )
        except SagaError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(saga.id))
