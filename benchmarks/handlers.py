"""The no-op step handlers and the 4-step sagas every benchmark runs."""

from __future__ import annotations

from typing import Any

from bpm import definitions, registry
from bpm.context import StepContext
from bpm.declarations import SagaDeclaration, StepDeclaration
from bpm.models import SagaDefinition

STEPS = 4
TRANSACTIONAL = "bench_local"
AT_LEAST_ONCE = "bench_remote"


@registry.handler("bench.local", transactional=True)
def local_step(ctx: StepContext) -> dict[str, Any]:
    return {"n": ctx.attempt}


@registry.handler("bench.remote")
def remote_step(ctx: StepContext) -> dict[str, Any]:
    return {"n": ctx.attempt}


def declare(name: str, handler: str, steps: int = STEPS) -> SagaDefinition:
    """Sync a saga of `steps` no-op steps run by `handler`; return its definition row."""
    declaration = SagaDeclaration(
        name=name,
        title=name,
        steps=tuple(StepDeclaration(f"s{i}", handler) for i in range(steps)),
        input_schema={"type": "object"},
    )
    definition, _ = definitions.sync_declaration(declaration)
    return definition


def declare_all() -> None:
    """Sync the benchmark sagas: transactional and at-least-once no-op steps."""
    declare(TRANSACTIONAL, "bench.local")
    declare(AT_LEAST_ONCE, "bench.remote")
