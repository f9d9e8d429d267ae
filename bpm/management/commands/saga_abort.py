from __future__ import annotations

from bpm.management.base import SagaActionCommand


class Command(SagaActionCommand):
    help = "Close a stuck saga as resolved by hand (preview unless --yes)."
    action = "abort"
