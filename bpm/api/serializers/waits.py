"""Signals, task tokens and human tasks: what their requests carry and what they answer."""

from __future__ import annotations

from rest_framework import serializers

from bpm.answers import REFUSAL_CODE
from bpm.api.fields import JSONObjectField, Rfc3339DateTimeField, StrictCharField
from bpm.api.serializers.base import RequestSerializer
from bpm.models import Wait

REASON_LENGTH = 1000


class SignalSerializer(RequestSerializer):
    """A signal's payload: it becomes the output of the step that waits for the signal."""

    payload = JSONObjectField(required=False, default=dict)


class SignalReceiptSerializer(serializers.Serializer):
    saga = serializers.UUIDField()
    signal = serializers.CharField()
    duplicate = serializers.BooleanField(
        help_text="true when the saga already had this signal: nothing changed"
    )
    consumed = serializers.BooleanField(
        help_text="false while no step has taken it yet (it is kept until one waits for it)"
    )
    received_at = Rfc3339DateTimeField()


class TokenSucceedSerializer(RequestSerializer):
    """The output of the step that waits on the token."""

    output = JSONObjectField(required=False, default=dict)


class TokenFailSerializer(RequestSerializer):
    """A refusal of the step that waits on the token."""

    code = serializers.RegexField(
        REFUSAL_CODE.pattern,
        max_length=64,
        help_text="e.g. FRAUD_SUSPECTED: A-Z, 0-9 and _, starting with a letter",
        error_messages={"invalid": "must be 1 to 64 of A-Z, 0-9 and _, starting with a letter"},
    )
    message = StrictCharField(max_length=1000, required=False, default="", allow_blank=True)


class TokenReceiptSerializer(serializers.Serializer):
    saga = serializers.UUIDField()
    step = serializers.CharField()
    status = serializers.CharField(
        help_text="the step's status: SUCCEEDED or FAILED, or RUNNING/PENDING while the action that"
        " handed the token on has not returned (the answer is then kept for it)"
    )


class TaskCompleteSerializer(RequestSerializer):
    """The task's form data: validated by the form's JSON schema, the step's output."""

    # A field named like Serializer.data: DRF's metaclass moves declared fields off the class.
    data = JSONObjectField()  # type: ignore[assignment]


class TaskRejectSerializer(RequestSerializer):
    reason = StrictCharField(max_length=REASON_LENGTH)


class TaskSerializer(serializers.ModelSerializer[Wait]):
    saga = serializers.UUIDField(source="saga_id")
    definition = serializers.CharField(source="saga.definition_name")
    business_key = serializers.CharField(source="saga.business_key")
    step = serializers.CharField(source="run.step.name")
    status = serializers.SerializerMethodField()
    claimed_by = serializers.SerializerMethodField()
    due_at = Rfc3339DateTimeField(source="run.due_at")
    created_at = Rfc3339DateTimeField()
    claimed_at = Rfc3339DateTimeField()

    class Meta:
        model = Wait
        fields = (
            "id",
            "saga",
            "definition",
            "business_key",
            "step",
            "group",
            "title",
            "form",
            "status",
            "claimed_by",
            "claimed_at",
            "created_at",
            "due_at",
        )

    def get_status(self, task: Wait) -> str:
        """OPEN, CLAIMED, or the step's status once the task is closed."""
        if task.run.status != "WAITING":
            return str(task.run.status)
        return "CLAIMED" if task.claimed_by_id else "OPEN"

    def get_claimed_by(self, task: Wait) -> str | None:
        return task.claimed_by.get_username() if task.claimed_by else None
