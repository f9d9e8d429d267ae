"""A definition version as designers write it, for POST /api/v1/definitions/ and its reads.

The shape is `{"name", "title", "input_schema", "steps": [{"name", "action", "compensation",
"kind", "after", "wait", "retry": {…}, "timeout", "queue"}]}`; `action` and `compensation` are a
registered handler's name or `{"http": {…}}` (bpm/http_calls.py). These serializers check types
and sizes; whether the steps form a saga the engine can run is the engine's own validation
(bpm.definitions.validate_declaration, which the admin's composer also reaches), run when the
draft is composed.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpm import definitions, http_calls
from bpm.api.fields import (
    JSONObjectField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)
from bpm.api.serializers.base import RequestSerializer
from bpm.declarations import (
    COMPENSATABLE,
    PIVOT,
    RETRIABLE,
    RetryPolicy,
    SagaDeclaration,
    StepDeclaration,
)
from bpm.models import SagaDefinition

KINDS = {"compensatable": COMPENSATABLE, "pivot": PIVOT, "retriable": RETRIABLE}
MAX_STEPS = 50
SLUG = r"^[-a-zA-Z0-9_]+$"
SLUG_MESSAGE = "Letters a-z and A-Z, digits, - and _ only (ASCII), at most 100."
ACTION_SCHEMA = {
    "oneOf": [
        {"type": "string", "description": "a registered handler's name"},
        {
            "type": "object",
            "description": "an HTTP call (docs/processes.md)",
            "required": ["http"],
            "additionalProperties": False,
            "properties": {
                "http": {
                    "type": "object",
                    "required": ["method", "url"],
                    "additionalProperties": False,
                    "properties": {
                        "method": {"type": "string", "enum": list(http_calls.METHODS)},
                        "url": {"type": "string", "maxLength": http_calls.MAX_URL_LENGTH},
                        "body": {},
                        "headers": {"type": "object"},
                    },
                }
            },
        },
    ]
}


@extend_schema_field(ACTION_SCHEMA)
class ActionField(serializers.Field):
    """A registered handler's name, or {"http": {…}} checked by bpm.http_calls."""

    default_error_messages = {"invalid": 'Give a handler name or {"http": {…}}.'}

    def to_internal_value(self, data: Any) -> str | dict[str, Any]:
        if isinstance(data, str):
            if not data.strip() or len(data) > 200 or "\x00" in data:
                self.fail("invalid")
            return data
        if not isinstance(data, dict):
            self.fail("invalid")
        problems = http_calls.action_problems(data)
        if problems:
            raise serializers.ValidationError(problems)
        return {"http": http_calls.normalized(data["http"])}

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"oneOf": [*ACTION_SCHEMA["oneOf"], {"type": "null"}]})
class NullableActionField(ActionField):
    """An action, or null for none (the schema's oneOf cannot also say nullable the usual way)."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            return True, None
        return super().validate_empty_values(data)


class RetryShapeSerializer(RequestSerializer):
    max_attempts = StrictIntegerField(min_value=1, max_value=1000, default=3)
    initial_backoff = StrictFloatField(min_value=0, max_value=86400, default=1.0)
    multiplier = StrictFloatField(min_value=1, max_value=100, default=2.0)
    max_backoff = StrictFloatField(min_value=0, max_value=86400, default=60.0)
    jitter = StrictFloatField(min_value=0, max_value=1, default=0.1)


class StepShapeSerializer(RequestSerializer):
    name = StrictCharField(max_length=100)
    action = NullableActionField(
        required=False, default=None, help_text="null (or left out) only for a wait step"
    )
    compensation = NullableActionField(required=False, default=None)
    kind = serializers.ChoiceField(choices=sorted(KINDS), default="compensatable")
    after = serializers.ListField(
        child=StrictCharField(max_length=100),
        required=False,
        allow_null=True,
        default=None,
        max_length=MAX_STEPS,
        help_text="the steps this one waits for: null for the step before it, [] to start with "
        "the saga (docs/processes.md#parallel-branches)",
    )
    wait = JSONObjectField(
        required=False,
        allow_null=True,
        default=None,
        help_text="a wait step's wait: a signal, a task token or a human task"
        " (docs/processes.md#waits-signals-task-tokens-and-human-tasks)",
    )
    retry = RetryShapeSerializer(required=False)
    timeout = StrictFloatField(min_value=0.001, max_value=86400, default=30.0)
    queue = StrictCharField(max_length=100, default="default")

    def validate_name(self, value: str) -> str:
        return _slug(value)



class DefinitionShapeSerializer(RequestSerializer):
    name = StrictCharField(max_length=100)
    title = StrictCharField(max_length=200)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")
    input_schema = JSONObjectField(required=False, allow_null=True, default=None)
    steps = serializers.ListField(child=StepShapeSerializer(), min_length=1, max_length=MAX_STEPS)
    reason = StrictCharField(
        max_length=2000,
        required=False,
        default="composed through the API",
        help_text="why this change: the approving designer reads it",
    )

    def validate_name(self, value: str) -> str:
        return _slug(value)


def _slug(value: str) -> str:
    if not re.fullmatch(SLUG, value):
        raise serializers.ValidationError(SLUG_MESSAGE)
    return value


def declaration_from(data: dict[str, Any]) -> SagaDeclaration:
    """Return the declaration a validated shape describes (not yet checked by the engine)."""
    return SagaDeclaration(
        name=data["name"],
        title=data["title"].strip(),
        description=data.get("description", "").strip(),
        input_schema=data.get("input_schema") or None,
        steps=tuple(_step_from(step) for step in data["steps"]),
    )


def _step_from(step: dict[str, Any]) -> StepDeclaration:
    action, action_http = http_calls.step_action(step.get("action"))
    compensation, compensation_http = http_calls.step_action(step.get("compensation"))
    retry = step.get("retry") or {}
    defaults = RetryPolicy()
    return StepDeclaration(
        name=step["name"],
        action=action,
        compensation=compensation,
        kind=KINDS[step["kind"]],
        retry=RetryPolicy(
            max_attempts=retry.get("max_attempts", defaults.max_attempts),
            initial_backoff=retry.get("initial_backoff", defaults.initial_backoff),
            multiplier=retry.get("multiplier", defaults.multiplier),
            max_backoff=retry.get("max_backoff", defaults.max_backoff),
            jitter=retry.get("jitter", defaults.jitter),
        ),
        timeout=step["timeout"],
        queue=step["queue"],
        action_http=action_http,
        compensation_http=compensation_http,
        after=step.get("after"),
        wait=step.get("wait") or {},
    )


def shape_of(declaration: SagaDeclaration) -> dict[str, Any]:
    """Return a declaration in the shape designers write (what GET answers and POST takes)."""
    kinds = {kind: name for name, kind in KINDS.items()}
    return {
        "name": declaration.name,
        "title": declaration.title,
        "description": declaration.description,
        "input_schema": declaration.input_schema,
        "steps": [
            {
                "name": step.name,
                "action": (
                    http_calls.as_action(step.action, step.action_http)
                    if step.action or step.action_http
                    else None
                ),
                "compensation": (
                    http_calls.as_action(step.compensation, step.compensation_http)
                    if step.compensation
                    else None
                ),
                "kind": kinds.get(step.kind, step.kind.lower()),
                "after": None if step.after is None else list(step.after),
                "wait": step.wait or None,
                "retry": {
                    "max_attempts": step.retry.max_attempts,
                    "initial_backoff": step.retry.initial_backoff,
                    "multiplier": step.retry.multiplier,
                    "max_backoff": step.retry.max_backoff,
                    "jitter": step.retry.jitter,
                },
                "timeout": step.timeout,
                "queue": step.queue,
            }
            for step in declaration.steps
        ],
    }


class StepShapeReadSerializer(serializers.Serializer):
    """For the schema: a step as GET answers it."""

    name = serializers.CharField()
    action = NullableActionField()
    compensation = NullableActionField()
    kind = serializers.ChoiceField(choices=sorted(KINDS))
    after = serializers.ListField(child=serializers.CharField(), allow_null=True)
    wait = JSONObjectField(allow_null=True)
    retry = RetryShapeSerializer()
    timeout = serializers.FloatField()
    queue = serializers.CharField()


class VersionShapeSerializer(serializers.Serializer):
    """A version of a definition in the designers' shape, with its review."""

    name = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField(help_text="DRAFT, PUBLISHED or REJECTED")
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    input_schema = serializers.DictField(allow_null=True)
    steps = StepShapeReadSerializer(many=True)
    composed_by = serializers.CharField(allow_null=True)
    change_reason = serializers.CharField(allow_blank=True)
    reviewed_by = serializers.CharField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    review_comment = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ApproveSerializer(RequestSerializer):
    comment = StrictCharField(max_length=2000, help_text="what you checked; recorded with you")


class RejectSerializer(RequestSerializer):
    reason = StrictCharField(max_length=2000, help_text="why it must not go live")


def version_shape(definition: SagaDefinition) -> dict[str, Any]:
    """Return a version in the designers' shape with its status and review, for GET."""
    return {
        **shape_of(definitions.declaration_of(definition)),
        "version": definition.version,
        "status": definition.status,
        "composed_by": _username(definition.composed_by),
        "change_reason": definition.change_reason,
        "reviewed_by": _username(definition.reviewed_by),
        "reviewed_at": definition.reviewed_at,
        "review_comment": definition.review_comment,
        "created_at": definition.created_at,
    }


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None
