"""What a step handler receives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepContext:
    saga_id: uuid.UUID
    step: str
    direction: str
    attempt: int
    input: dict[str, Any]
    # Outputs of the steps that finished before this one, by step name.
    outputs: dict[str, Any]
    # The same for every attempt of this step in this direction: pass it to anything outside.
    idempotency_key: str
    business_key: str = ""
    # Set while compensating: the step that refused, its code and message.
    failure: dict[str, Any] | None = None
    # The user whose request started the saga, None when code did: a participant checks that it
    # may use the rows the input names (bpm.ownership.may_use).
    owner_id: int | None = None
    # A task-token wait's token (bpm/waits.py): hand it to whoever will answer; "" otherwise.
    task_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_compensation(self) -> bool:
        return self.direction == "COMPENSATION"

    @property
    def action_idempotency_key(self) -> str:
        """Return the idempotency key the forward action of this step used (for compensations)."""
        return f"{self.saga_id}:{self.step}:forward"
