from __future__ import annotations

from bpm.management.base import SagaActionCommand


class Command(SagaActionCommand):
    help = "Pause a saga: running steps finish, no new step starts (preview unless --yes)."
    action = "pause"
