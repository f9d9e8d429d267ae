"""Saga definitions as declared in code, and their validation (shared with the admin)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings

from bpm import registry, waits
from bpm.errors import DefinitionInvalid

COMPENSATABLE = "COMPENSATABLE"
PIVOT = "PIVOT"
RETRIABLE = "RETRIABLE"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_backoff: float = 1.0
    multiplier: float = 2.0
    max_backoff: float = 60.0
    jitter: float = 0.1


@dataclass(frozen=True)
class StepDeclaration:
    name: str
    action: str
    compensation: str = ""
    kind: str = COMPENSATABLE
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0
    queue: str = "default"
    # A wait step's wait (bpm/waits.py); {} for a step whose action finishes it.
    wait: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SagaDeclaration:
    name: str
    title: str
    steps: tuple[StepDeclaration, ...]
    description: str = ""
    input_schema: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """Return a hash of everything that makes a version, to detect a changed declaration."""
        declared = asdict(self)
        for step in declared["steps"]:
            # A step that waits for nothing hashes as it did before waits existed, so adding
            # them made no new version of any saga.
            if not step["wait"]:
                del step["wait"]
        payload = json.dumps(declared, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


def validate_steps(steps: list[StepDeclaration]) -> None:
    """Raise DefinitionInvalid unless the steps form a saga the engine can run."""
    problems = []
    if not steps:
        problems.append("a saga needs at least one step")
    names = [step.name for step in steps]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f"step names must be unique: {', '.join(duplicates)}")
    known = set(registry.handler_names())
    pivots = [step.name for step in steps if step.kind == PIVOT]
    if len(pivots) > 1:
        problems.append(f"at most one pivot step is allowed, found {', '.join(pivots)}")
    pivot_seen = False
    for step in steps:
        problems.extend(_step_problems(step, known, after_pivot=pivot_seen))
        pivot_seen = pivot_seen or step.kind == PIVOT
    if problems:
        raise DefinitionInvalid("; ".join(problems))


def _step_problems(step: StepDeclaration, known: set[str], *, after_pivot: bool) -> list[str]:
    problems = []
    where = f"step {step.name!r}"
    if step.kind not in (COMPENSATABLE, PIVOT, RETRIABLE):
        problems.append(f"{where}: unknown kind {step.kind!r}")
    problems.extend(f"{where}: {problem}" for problem in waits.wait_problems(step.wait))
    if waits.runs_no_action(step.wait):
        if step.action:
            problems.append(f"{where}: a wait step has no action (it waits instead)")
    elif step.action not in known:
        problems.append(f"{where}: no handler registered as {step.action!r}")
    if step.compensation and step.compensation not in known:
        problems.append(f"{where}: no handler registered as {step.compensation!r}")
    if step.kind == RETRIABLE and step.compensation:
        problems.append(f"{where}: a retriable step carries no compensation")
    if after_pivot and step.kind != RETRIABLE:
        problems.append(f"{where}: steps after the pivot must be retriable")
    if step.queue not in settings.RQ_QUEUES:
        problems.append(f"{where}: queue {step.queue!r} is not configured (BPM_QUEUES)")
    problems.extend(f"{where}: {problem}" for problem in _policy_problems(step))
    return problems


def _policy_problems(step: StepDeclaration) -> list[str]:
    policy = step.retry
    problems = []
    if policy.max_attempts < 1:
        problems.append("max attempts must be at least 1")
    if policy.initial_backoff < 0 or policy.max_backoff < policy.initial_backoff:
        problems.append("backoff must satisfy 0 <= initial <= max")
    if policy.multiplier < 1:
        problems.append("backoff multiplier must be at least 1")
    if not 0 <= policy.jitter <= 1:
        problems.append("jitter must be between 0 and 1")
    if step.timeout <= 0:
        problems.append("timeout must be positive")
    return problems
