from __future__ import annotations

from bpm.management.base import SagaActionCommand


class Command(SagaActionCommand):
    help = "Resume a paused saga: waiting steps ring again (preview unless --yes)."
    action = "resume"
