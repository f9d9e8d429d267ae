"""Sagas: starting one, reading it and its timeline, and the operator actions on it.

Response serializers read rows the views loaded and never query on their own, so a list costs
the same number of queries whatever its length.

A step's error text is whatever its handler raised: a database's "bigint out of range", a
hostname, a path. Only those who may read the timeline (bpm.view_sagaevent: viewers, operators)
see it; everybody else sees a business refusal's own code and message, and for a fault a stable
code and a message that says nothing about the inside.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpm import definitions
from bpm.api.fields import (
    JSONObjectField,
    Rfc3339DateTimeField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from bpm.api.serializers.base import RequestSerializer
from bpm.models import (
    Direction,
    FailureKind,
    PauseScope,
    SagaInstance,
    SagaStatus,
    StepDefinition,
    StepKind,
    StepRun,
    StepStatus,
    StuckReason,
)

REASON_LENGTH = 1000
# What a reader without bpm.view_sagaevent sees of a technical fault, and of an operator's reason.
FAULT_CODE = "INTERNAL_ERROR"
FAULT_MESSAGE = "the step failed with a technical fault; an operator can see the details"
OPERATOR_MESSAGE = "an operator stopped the saga; an operator can see the reason"
ERRORS_IN_FULL = "errors_in_full"


def error_detail_for(user: Any) -> dict[str, bool]:
    """Return the serializer context that says whether `user` sees step errors as raised."""
    return {ERRORS_IN_FULL: bool(user.is_active and user.has_perm("bpm.view_sagaevent"))}


class SagaStartSerializer(RequestSerializer):
    """A saga to start."""

    definition = StrictCharField(max_length=100)
    version = StrictIntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="default: the latest active"
    )
    input = JSONObjectField(
        help_text="validated against the definition's input schema, which GET"
        " /api/v1/definitions/{name}/ serves"
    )
    business_key = StrictCharField(
        required=False, allow_blank=True, max_length=200, default="", help_text="searchable"
    )


class DefinitionRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()


class StepStateSerializer(serializers.Serializer):
    name = serializers.CharField()
    position = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=StepKind.choices)
    status = serializers.ChoiceField(
        choices=StepStatus.choices, allow_null=True, help_text="null until the step is reached"
    )
    attempts = serializers.IntegerField(help_text="forward attempts, over every redrive")
    compensation_status = serializers.ChoiceField(
        choices=StepStatus.choices, allow_null=True, help_text="null unless it was compensated"
    )
    last_error = serializers.CharField(allow_null=True)


class SagaSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    definition = DefinitionRefSerializer()
    status = serializers.ChoiceField(choices=SagaStatus.choices)
    stuck_reason = serializers.ChoiceField(choices=StuckReason.choices, allow_null=True)
    business_key = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["stuck_reason"] = instance.stuck_reason or None
        return data


class SagaDetailSerializer(SagaSerializer):
    input = serializers.DictField()
    # DRF's metaclass takes declared fields off the class, so these names shadow nothing.
    context = serializers.DictField(help_text="outputs of finished steps, by step name")  # type: ignore[assignment]
    failure = serializers.DictField(
        allow_null=True, help_text="what made it compensate: step, code, message"
    )
    deadline = serializers.DateTimeField(allow_null=True)
    paused = serializers.ChoiceField(
        choices=PauseScope.choices,
        allow_blank=True,
        help_text='"" unless paused: SAGA (by itself) or DEFINITION (with its version)',
    )
    steps = serializers.SerializerMethodField(help_text="in order, from the saga's step runs")

    @extend_schema_field(StepStateSerializer(many=True))
    def get_steps(self, saga: SagaInstance) -> list[dict[str, Any]]:
        # The view prefetches the runs, and a definition's steps are cached: no query here.
        runs = sorted(saga.step_runs.all(), key=lambda run: run.pk)
        in_full = _errors_in_full(self)
        return [
            _step_state(step, runs, in_full) for step in definitions.steps_of(saga.definition_id)
        ]

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if data["failure"] is not None and not _errors_in_full(self):
            data["failure"] = _safe_failure(data["failure"])
        return data


def _errors_in_full(serializer: serializers.Serializer) -> bool:
    # Read through the base class: SagaDetailSerializer's `context` field shadows the property.
    context = serializers.Serializer.context.fget(serializer)  # type: ignore[attr-defined]
    return bool(context.get(ERRORS_IN_FULL, False))


def _step_state(step: StepDefinition, runs: list[StepRun], in_full: bool) -> dict[str, Any]:
    """Return a step's state from every run of it, oldest first."""
    mine = [run for run in runs if run.step_id == step.pk]
    forward = [run for run in mine if run.direction == Direction.FORWARD]
    compensation = [run for run in mine if run.direction == Direction.COMPENSATION]
    failed = [run for run in mine if run.last_error]
    return {
        "name": step.name,
        "position": step.position,
        "kind": step.kind,
        "status": forward[-1].status if forward else None,
        "attempts": sum(run.attempts for run in forward),
        "compensation_status": compensation[-1].status if compensation else None,
        "last_error": _error_text(failed[-1], in_full) if failed else None,
    }


def _error_text(run: StepRun, in_full: bool) -> str:
    """Return the run's last error as the reader may see it: a refusal's own, else a fault's."""
    if in_full or run.failure_kind == FailureKind.REFUSED:
        return run.last_error
    return FAULT_MESSAGE


def _safe_failure(failure: dict[str, Any]) -> dict[str, Any]:
    """Return what made the saga compensate, without a fault's or an operator's own words."""
    kind = failure.get("kind", "")
    if kind == FailureKind.REFUSED:
        return failure
    shown = {"step": failure.get("step", ""), "kind": kind}
    if kind == "OPERATOR":
        return {**shown, "code": failure.get("code", kind), "message": OPERATOR_MESSAGE}
    return {**shown, "code": FAULT_CODE, "message": FAULT_MESSAGE}


class SagaFilterSerializer(RequestSerializer):
    """The query of the saga list; every filter is optional and they combine with AND."""

    status = serializers.ChoiceField(choices=SagaStatus.choices, required=False)
    definition = StrictCharField(required=False, max_length=100)
    business_key = StrictCharField(required=False, max_length=200)
    created_after = Rfc3339DateTimeField(required=False, help_text="inclusive")
    created_before = Rfc3339DateTimeField(required=False, help_text="exclusive")

    def to_internal_value(self, data: Any) -> Any:
        # Query strings also carry the page's cursor and size, which are not filters.
        return serializers.Serializer.to_internal_value(self, data)


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    type = serializers.CharField()
    actor = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    step = serializers.CharField(allow_null=True, source="step_run.step.name", default=None)
    direction = serializers.ChoiceField(
        choices=Direction.choices, allow_null=True, source="step_run.direction", default=None
    )
    attempt = serializers.IntegerField(allow_null=True)
    data = serializers.DictField()  # type: ignore[assignment]


# --- operator actions -------------------------------------------------------------------------


class ActionSerializer(RequestSerializer):
    """An operator action and the reason for it."""

    reason = StrictCharField(max_length=REASON_LENGTH, help_text="recorded in the timeline")
    preview = StrictBooleanField(
        required=False, default=False, help_text="answer what would run; change nothing"
    )


class RetrySerializer(ActionSerializer):
    """A retry, optionally with a new input or context."""

    input = JSONObjectField(required=False, help_text="replaces the saga's input")
    context = JSONObjectField(  # type: ignore[assignment]
        required=False, help_text="merged into the saga's context"
    )


class SkipSerializer(ActionSerializer):
    """A skip of the failed step, with the output to record for it."""

    output = JSONObjectField(required=False, help_text="recorded as the failed step's output")


class RerunSerializer(RetrySerializer):
    """A rerun from a step, optionally with a new input or context."""

    step = StrictCharField(max_length=100, help_text="the step to run again, with every later one")


class DefinitionPauseSerializer(ActionSerializer):
    """A pause or resume of a definition version."""

    version = serializers.IntegerField(min_value=1, help_text="the version to pause or resume")


class DefinitionPauseResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    paused = serializers.BooleanField(help_text="whether the version is paused now")
    sagas = serializers.IntegerField(help_text="unfinished sagas it holds or let go")
    applied = serializers.BooleanField(help_text="false for a preview")


class AssignSerializer(RequestSerializer):
    """Who takes the saga on: an operator's username, or null to unassign."""

    assignee = StrictCharField(
        max_length=150, allow_null=True, help_text="an operator's username; null unassigns"
    )
    reason = StrictCharField(max_length=REASON_LENGTH, required=False, default="")


class CommentSerializer(RequestSerializer):
    text = StrictCharField(max_length=2000, help_text="plain text, shown escaped")


class OwnershipSerializer(serializers.Serializer):
    saga = serializers.UUIDField()
    assignee = serializers.CharField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)


class PlannedStepSerializer(serializers.Serializer):
    step = serializers.CharField()
    direction = serializers.ChoiceField(choices=Direction.choices)


class PreviewSerializer(serializers.Serializer):
    action = serializers.CharField()
    saga = serializers.UUIDField()
    will_run = PlannedStepSerializer(many=True, help_text="in order, if each succeeds")
    plan = serializers.ListField(
        child=serializers.CharField(), help_text='the same as lines: "run x", "compensate y"'
    )
