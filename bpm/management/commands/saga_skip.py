from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from bpm.management.base import SagaActionCommand, parse_json


class Command(SagaActionCommand):
    help = "Mark a stuck saga's failed step as done by hand (preview unless --yes)."
    action = "skip"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--output", default="{}", help="JSON object recorded as its output")

    def extra(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"output": parse_json(options["output"], option="--output")}
