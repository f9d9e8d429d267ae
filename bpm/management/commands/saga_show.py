from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpm import engine, services
from bpm.errors import SagaError


class Command(BaseCommand):
    help = "Show a saga: its state, its steps and its timeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("saga_id")
        parser.add_argument("--tracebacks", action="store_true", help="print error tracebacks")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            saga = services.saga_get(options["saga_id"])
        except SagaError as exc:
            raise CommandError(str(exc)) from None
        write = self.stdout.write
        status = saga.status + (
            f" ({saga.get_stuck_reason_display()})" if saga.stuck_reason else ""
        )
        write(f"Saga {saga.id}  {saga.definition}  {status}")
        if saga.business_key:
            write(f"business key: {saga.business_key}")
        write(f"input:   {json.dumps(saga.input, sort_keys=True)}")
        write(f"context: {json.dumps(saga.context, sort_keys=True)}")
        write("\nsteps:")
        for (step, direction), run in engine.latest_runs(saga).items():
            error = f"  last error: {run.last_error}" if run.last_error else ""
            write(f"  {step:<24} {direction:<12} {run.status:<10} attempts {run.attempts}{error}")
        write("\ntimeline:")
        for event in saga.events.select_related("step_run__step"):
            step = f" [{event.step_run.step.name}]" if event.step_run else ""
            attempt = f" #{event.attempt}" if event.attempt else ""
            line = f"  {event.at:%Y-%m-%d %H:%M:%S.%f}  {event.type:<20}{step}{attempt}"
            line += f"  {event.actor}"
            if event.message:
                line += f"  {event.message}"
            write(line)
            if options["tracebacks"] and event.data.get("traceback"):
                write("    " + event.data["traceback"].rstrip().replace("\n", "\n    "))
