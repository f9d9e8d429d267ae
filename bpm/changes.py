"""What one version of a definition changes against another: its steps and its input schema.

A pure comparison of two declarations, so a reviewer sees exactly what a draft would change in
the business process before approving it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bpm.declarations import SagaDeclaration, StepDeclaration

# A step's fields in the order a reviewer reads them; the retry policy's are flattened.
STEP_FIELDS = (
    "position",
    "action",
    "compensation",
    "action_http",
    "compensation_http",
    "kind",
    "max_attempts",
    "initial_backoff",
    "multiplier",
    "max_backoff",
    "jitter",
    "timeout",
    "queue",
    "after",
)
ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: its name, the value before and the value after."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class StepChange:
    """A step present in both versions whose fields differ."""

    name: str
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class StepPresence:
    """A step only one of the versions has, with its position and action there."""

    name: str
    position: int
    action: str
    compensation: str
    kind: str


@dataclass(frozen=True)
class SchemaChange:
    """A part of the input schema added, removed or changed, at a JSON pointer ("" is the root)."""

    kind: str
    path: str
    before: Any = None
    after: Any = None

    @property
    def before_text(self) -> str:
        return "" if self.kind == ADDED else _json(self.before)

    @property
    def after_text(self) -> str:
        return "" if self.kind == REMOVED else _json(self.after)


@dataclass(frozen=True)
class VersionDiff:
    """Everything a version changes against its base (None: there is no published version)."""

    base: str | None
    added: tuple[StepPresence, ...]
    removed: tuple[StepPresence, ...]
    changed: tuple[StepChange, ...]
    schema: tuple[SchemaChange, ...]
    details: tuple[FieldChange, ...]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.schema or self.details)


def compare(
    base: SagaDeclaration | None, other: SagaDeclaration, *, base_label: str = ""
) -> VersionDiff:
    """Return what `other` changes against `base` (everything is added when there is no base)."""
    before = _steps_by_name(base.steps if base else ())
    after = _steps_by_name(other.steps)
    added = tuple(_presence(after[name]) for name in after if name not in before)
    removed = tuple(_presence(before[name]) for name in before if name not in after)
    changed = []
    for name, (position, step) in after.items():
        if name not in before:
            continue
        fields = _field_changes(_step_fields(*before[name]), _step_fields(position, step))
        if fields:
            changed.append(StepChange(name=name, fields=fields))
    details = _field_changes(
        {"title": base.title, "description": base.description} if base else {},
        {"title": other.title, "description": other.description} if base else {},
    )
    return VersionDiff(
        base=(base_label or None) if base else None,
        added=added,
        removed=removed,
        changed=tuple(changed),
        schema=tuple(
            # No schema and an empty one both accept any object.
            compare_schemas(
                (base.input_schema if base else None) or None, other.input_schema or None
            )
        ),
        details=details,
    )


def compare_schemas(before: Any, after: Any, path: str = "") -> list[SchemaChange]:
    """Return the parts of two JSON Schemas that differ, by JSON pointer, outermost first."""
    if before == after and type(before) is type(after):
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path}/{_escape(key)}"
            if key not in before:
                changes.append(SchemaChange(ADDED, where, after=after[key]))
            elif key not in after:
                changes.append(SchemaChange(REMOVED, where, before=before[key]))
            else:
                changes.extend(compare_schemas(before[key], after[key], where))
        return changes
    if before is None:
        return [SchemaChange(ADDED, path, after=after)]
    if after is None:
        return [SchemaChange(REMOVED, path, before=before)]
    return [SchemaChange(CHANGED, path, before=before, after=after)]


def _steps_by_name(steps: tuple[StepDeclaration, ...]) -> dict[str, tuple[int, StepDeclaration]]:
    return {step.name: (position, step) for position, step in enumerate(steps, start=1)}


def _presence(entry: tuple[int, StepDeclaration]) -> StepPresence:
    position, step = entry
    return StepPresence(
        name=step.name,
        position=position,
        action=step.action,
        compensation=step.compensation,
        kind=step.kind,
    )


def _step_fields(position: int, step: StepDeclaration) -> dict[str, Any]:
    retry = step.retry
    values = {
        "position": position,
        "action": step.action,
        "compensation": step.compensation,
        "action_http": _json(step.action_http) if step.action_http else None,
        "compensation_http": _json(step.compensation_http) if step.compensation_http else None,
        "kind": step.kind,
        "max_attempts": retry.max_attempts,
        "initial_backoff": retry.initial_backoff,
        "multiplier": retry.multiplier,
        "max_backoff": retry.max_backoff,
        "jitter": retry.jitter,
        "timeout": step.timeout,
        "queue": step.queue,
        # None: the step before it; a list: the steps it waits for (parallel branches).
        "after": list(step.after) if step.after is not None else None,
    }
    return {name: values[name] for name in STEP_FIELDS}


def _field_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(field=name, before=before.get(name), after=after.get(name))
        for name in after
        if before.get(name) != after.get(name)
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _escape(key: Any) -> str:
    # JSON pointer (RFC 6901): "~" and "/" inside a key are escaped.
    return str(key).replace("~", "~0").replace("/", "~1")
