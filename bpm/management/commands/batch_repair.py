"""Repair every saga a filter of the saga list matches: preview by default, start with --yes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import QueryDict

from bpm import batches
from bpm.errors import SagaError
from bpm.management.base import actor_from, parse_json


class Command(BaseCommand):
    help = (
        "Retry, skip, compensate, abort or migrate (to --to-version) every saga the saga list's"
        " filter selects, as one batch the workers run. Without --yes it only previews (nothing"
        " changes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=batches.ACTIONS)
        parser.add_argument(
            "--filter",
            default="",
            help="the dashboard list's query string, e.g. 'status=STUCK&definition=place_order'",
        )
        parser.add_argument("--patch", help="retry: a JSON merge patch for each saga's input")
        parser.add_argument("--output", help="skip: the JSON object to record as the output")
        parser.add_argument(
            "--to-version",
            help="migrate: the version of the filter's definition to move the sagas to",
        )
        parser.add_argument("--reason", help="why; recorded in every saga's timeline")
        parser.add_argument(
            "--user",
            help="act as this user (their permissions are checked); default: the shell's user,"
            " recorded as the actor",
        )
        parser.add_argument(
            "--yes", action="store_true", help="start the batch (without it, only preview)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        arguments: dict[str, Any] = {
            "query": QueryDict(options["filter"]),
            "action": options["action"],
            "patch": _json(options["patch"], "--patch"),
            "output": _json(options["output"], "--output"),
            "target_version": options["to_version"],
            **self._who(options["user"]),
        }
        try:
            if not options["yes"]:
                self._preview(batches.batch_preview(**arguments))
                return
            if not options["reason"]:
                raise CommandError("--reason is required to start a batch")
            batch = batches.batch_create(**arguments, reason=options["reason"])
        except SagaError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"batch {batch.pk}: {batch.action} of {batch.matched} sagas queued for the workers"
            )
        )
        self.stdout.write(f"  progress: /admin/dashboard/batches/{batch.pk}/")

    def _who(self, username: str | None) -> dict[str, Any]:
        if not username:
            return {"actor": actor_from(None)}
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        return {"user": user}

    def _preview(self, preview: batches.Preview) -> None:
        sample = f" (previewed: the oldest {preview.sampled})" if preview.is_sample else ""
        self.stdout.write(f"{preview.matched} sagas match{sample}.")
        for plan, count in preview.plans:
            self.stdout.write(f"  {count:>6}  {'; '.join(plan) or 'nothing more runs'}")
        for why, count, examples in preview.refusals:
            self.stdout.write(f"  {count:>6}  refused: {why} (e.g. {', '.join(examples)})")
        self.stdout.write("Nothing was changed. Pass --yes (and --reason) to start the batch.")


def _json(text: str | None, option: str) -> Any:
    return None if text is None else parse_json(text, option=option)
