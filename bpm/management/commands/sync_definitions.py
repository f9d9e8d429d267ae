from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from bpm import definitions
from bpm.errors import DefinitionInvalid


class Command(BaseCommand):
    help = "Create a new definition version for every saga whose code declaration changed."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            synced = definitions.sync_all()
        except DefinitionInvalid as exc:
            raise CommandError(f"a declared saga is invalid: {exc}") from None
        for definition, created in synced:
            state = "created" if created else "unchanged"
            self.stdout.write(f"{definition.name} v{definition.version}: {state}")
