from __future__ import annotations

from bpm.management.base import SagaActionCommand


class Command(SagaActionCommand):
    help = "Undo a stuck saga's finished steps, newest first (preview unless --yes)."
    action = "compensate"
