"""Saga definitions as declared in code, and their validation (shared with the admin)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings

from bpm import graph, http_calls, registry, waits
from bpm.errors import DefinitionInvalid

COMPENSATABLE = "COMPENSATABLE"
PIVOT = "PIVOT"
RETRIABLE = "RETRIABLE"
HTTP_FIELDS = ("action_http", "compensation_http")


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
    # An HTTP call instead of a registered handler (bpm/http_calls.py); `action` (or
    # `compensation`) then holds its label, http_calls.label(call).
    action_http: dict[str, Any] | None = None
    compensation_http: dict[str, Any] | None = None
    # The steps this one waits for: None means the step before it in the list, () that it
    # starts with the saga. Steps whose predecessors are all done run at the same time.
    after: Sequence[str] | None = None
    # A wait step's wait (bpm/waits.py); {} for a step whose action finishes it.
    wait: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.after is not None:
            if isinstance(self.after, str):
                raise DefinitionInvalid(
                    f"step {self.name!r}: after must be a list of step names, not a string"
                )
            object.__setattr__(self, "after", tuple(self.after))


@dataclass(frozen=True)
class SagaDeclaration:
    name: str
    title: str
    steps: tuple[StepDeclaration, ...]
    description: str = ""
    input_schema: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """Return a hash of everything that makes a version, to detect a changed declaration."""
        shape = asdict(self)
        for step in shape["steps"]:
            # Absent, they leave the fingerprints of versions declared before they existed alone:
            # adding these fields made no new version of any declaration.
            for name in ("after", *HTTP_FIELDS):
                if step[name] is None:
                    del step[name]
            if not step["wait"]:
                del step["wait"]
        payload = json.dumps(shape, sort_keys=True, default=str)
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
    order_problems = _order_problems(steps)
    problems.extend(order_problems)
    after_pivot: set[str] = set()
    if not order_problems and not duplicates:
        dag = step_graph(steps)
        for pivot in pivots:
            after_pivot |= graph.descendants(dag, pivot)
            problems.extend(_pivot_problems(steps, dag, pivot))
    for step in steps:
        problems.extend(_step_problems(step, known, after_pivot=step.name in after_pivot))
    if problems:
        raise DefinitionInvalid("; ".join(problems))


def step_graph(steps: Sequence[StepDeclaration]) -> dict[str, tuple[str, ...]]:
    """Return each step's predecessors, the default (the step before it) resolved."""
    return graph.predecessors((step.name, step.after) for step in steps)


def _order_problems(steps: Sequence[StepDeclaration]) -> list[str]:
    """Return what is wrong with the steps' `after` lists: unknown names, repeats, cycles."""
    problems = []
    names = {step.name for step in steps}
    for step in steps:
        if step.after is None:
            continue
        where = f"step {step.name!r}"
        seen: set[str] = set()
        for before in step.after:
            if not isinstance(before, str):
                problems.append(f"{where}: after must list step names, found {before!r}")
            elif before == step.name:
                problems.append(f"{where} cannot run after itself")
            elif before not in names:
                problems.append(f"{where} runs after {before!r}, which is not a step of this saga")
            elif before in seen:
                problems.append(f"{where} names {before!r} twice in after")
            else:
                seen.add(before)
    if not problems:
        cycle = graph.find_cycle(step_graph(steps))
        if cycle:
            problems.append("steps wait for each other in a cycle: " + " → ".join(map(repr, cycle)))
    return problems


def _pivot_problems(steps: Sequence[StepDeclaration], dag: graph.Graph, pivot: str) -> list[str]:
    """Return the compensatable steps the pivot does not wait for (directly or not)."""
    # A compensatable step after the pivot is told apart by _step_problems.
    related = graph.ancestors(dag, pivot) | graph.descendants(dag, pivot)
    loose = [s.name for s in steps if s.kind == COMPENSATABLE and s.name not in related]
    if not loose:
        return []
    return [
        f"the pivot {pivot!r} must run after every compensatable step, but does not wait for"
        f" {', '.join(map(repr, loose))}"
    ]


def _step_problems(step: StepDeclaration, known: set[str], *, after_pivot: bool) -> list[str]:
    problems = []
    where = f"step {step.name!r}"
    if step.kind not in (COMPENSATABLE, PIVOT, RETRIABLE):
        problems.append(f"{where}: unknown kind {step.kind!r}")
    problems.extend(f"{where}: {problem}" for problem in waits.wait_problems(step.wait))
    if waits.runs_no_action(step.wait):
        if step.action or step.action_http:
            problems.append(f"{where}: a wait step has no action (it waits instead)")
    else:
        problems.extend(_handler_problems(where, "action", step.action, step.action_http, known))
    if step.compensation or step.compensation_http:
        problems.extend(
            _handler_problems(
                where, "compensation", step.compensation, step.compensation_http, known
            )
        )
    if step.kind == RETRIABLE and step.compensation:
        problems.append(f"{where}: a retriable step carries no compensation")
    if after_pivot and step.kind != RETRIABLE:
        problems.append(f"{where}: steps after the pivot must be retriable")
    if step.queue not in settings.RQ_QUEUES:
        problems.append(f"{where}: queue {step.queue!r} is not configured (BPM_QUEUES)")
    problems.extend(f"{where}: {problem}" for problem in _policy_problems(step))
    return problems


def _handler_problems(
    where: str, role: str, name: str, call: dict[str, Any] | None, known: set[str]
) -> list[str]:
    """Return what is wrong with a step's action or compensation: a handler or an HTTP call."""
    if call is None:
        return [] if name in known else [f"{where}: no handler registered as {name!r}"]
    problems = [f"{where}: {role}: {problem}" for problem in http_calls.call_problems(call)]
    if not problems and name != http_calls.label(call):
        problems.append(f"{where}: {role} {name!r} is not the label of its HTTP call")
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
