from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from bpm.management.base import SagaActionCommand, parse_json, read_json_source


class Command(SagaActionCommand):
    help = (
        "Run a STUCK or COMPLETED saga again from a step and every later one, under new"
        " idempotency keys (preview unless --yes)."
    )
    action = "rerun"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--step", required=True, help="the step to run again")
        parser.add_argument("--input", help="replacement input, a JSON object")
        parser.add_argument("--input-file", help="replacement input from a file ('-': stdin)")
        parser.add_argument("--context", help="JSON object of step outputs to replace")

    def extra(self, options: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {"step": options["step"]}
        if options["input"] is not None:
            extra["input"] = parse_json(options["input"], option="--input")
        elif options["input_file"] is not None:
            extra["input"] = read_json_source(options["input_file"], option="--input-file")
        if options["context"] is not None:
            extra["context"] = parse_json(options["context"], option="--context")
        return extra
