"""A saga for batch repairs: two local steps, an input schema that a patch can break."""

from __future__ import annotations

from bpm import definitions
from bpm.declarations import RetryPolicy, SagaDeclaration
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaDefinition

ONCE = RetryPolicy(max_attempts=1, initial_backoff=1, multiplier=2, max_backoff=10, jitter=0)
SCHEMA = {
    "type": "object",
    "properties": {"email": {"type": "string", "minLength": 3}, "tier": {"type": "string"}},
    "required": ["email"],
}


def mailing() -> SagaDefinition:
    """Return the `mailing` saga: send (compensatable) then confirm (compensatable)."""
    definition, _ = definitions.sync_declaration(
        SagaDeclaration(
            name="mailing",
            title="Mailing",
            input_schema=SCHEMA,
            steps=(
                Step("send", "test.local", "test.local", retry=ONCE),
                Step("confirm", "test.local", "test.local", retry=ONCE),
            ),
        )
    )
    return definition
