"""Serializers: what a request may say (validated strictly) and what a response looks like.

Request serializers refuse fields they do not know. Response serializers read model rows (and
the few values computed for them by the views) and never query on their own, so a list costs the
same number of queries whatever its length.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpm import definitions
from bpm.api.fields import (
    MAX_ID,
    JSONObjectField,
    MoneyField,
    PositiveMoneyField,
    Rfc3339DateTimeField,
    StrictBooleanField,
    StrictCharField,
    StrictEmailField,
    StrictIntegerField,
)
from bpm.models import (
    Direction,
    SagaInstance,
    SagaStatus,
    StepDefinition,
    StepKind,
    StepRun,
    StepStatus,
    StuckReason,
)
from orders.models import OrderState, RejectionReason

MAX_PRODUCTS = 1000
REASON_LENGTH = 1000


class RequestSerializer(serializers.Serializer):
    """A request body: unknown fields are an error, not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {str(name): ["Unknown field."] for name in unknown}
                )
        return super().to_internal_value(data)


# --- errors -----------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="stable, machine-readable, e.g. invalid, not_found")
    message = serializers.CharField(help_text="for people")
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='per field, by path (e.g. "input.total", "products[0]"): what is wrong',
    )


# --- customers --------------------------------------------------------------------------------


class CustomerCreateSerializer(RequestSerializer):
    """A new customer account; the email address is optional."""

    name = StrictCharField(max_length=200)
    credit_limit = MoneyField()
    email = StrictEmailField(
        required=False, allow_null=True, max_length=254, help_text="where confirmations go"
    )


class CustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField(allow_null=True)
    credit_limit = MoneyField()
    available_credit = serializers.SerializerMethodField(
        help_text="the credit limit less the reserved payments"
    )
    created_at = serializers.DateTimeField()

    @extend_schema_field(MoneyField())
    def get_available_credit(self, customer: Any) -> str:
        # Computed by the payments service and handed over by the view.
        return f"{self.context['available_credit']:.2f}"


# --- orders -----------------------------------------------------------------------------------


class NotificationSerializer(RequestSerializer):
    """The text of the confirmation mail, instead of the standard one."""

    message = StrictCharField(max_length=10_000, help_text="the confirmation mail's text")


class OrderCreateSerializer(RequestSerializer):
    """A new order, decided by its place_order saga."""

    customer_id = StrictIntegerField(min_value=1, max_value=MAX_ID)
    products = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=MAX_PRODUCTS,
        help_text="product ids",
    )
    total = PositiveMoneyField()
    payment_method = StrictCharField(
        max_length=32,
        help_text="credit_card, or a test card: card_declined, card_flaky, card_down, card_slow",
    )
    notification = NotificationSerializer(required=False)
    email = StrictEmailField(
        required=False, max_length=254, help_text="where to send the confirmation"
    )


class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    products = serializers.ListField(child=serializers.IntegerField(), source="product_ids")
    total = MoneyField()
    state = serializers.ChoiceField(choices=OrderState.choices)
    rejection_reason = serializers.ChoiceField(choices=RejectionReason.choices, allow_null=True)
    saga = serializers.UUIDField(source="saga_id", help_text="the place_order saga deciding it")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- sagas ------------------------------------------------------------------------------------


class SagaStartSerializer(RequestSerializer):
    """A saga to start."""

    definition = StrictCharField(max_length=100)
    version = StrictIntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="default: the latest active"
    )
    input = JSONObjectField(help_text="checked against the definition's input schema")
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
    steps = serializers.SerializerMethodField(help_text="in order, from the saga's step runs")

    @extend_schema_field(StepStateSerializer(many=True))
    def get_steps(self, saga: SagaInstance) -> list[dict[str, Any]]:
        # The view prefetches the runs, and a definition's steps are cached: no query here.
        runs = sorted(saga.step_runs.all(), key=lambda run: run.pk)
        return [_step_state(step, runs) for step in definitions.steps_of(saga.definition_id)]


def _step_state(step: StepDefinition, runs: list[StepRun]) -> dict[str, Any]:
    """Return a step's state from every run of it, oldest first."""
    mine = [run for run in runs if run.step_id == step.pk]
    forward = [run for run in mine if run.direction == Direction.FORWARD]
    compensation = [run for run in mine if run.direction == Direction.COMPENSATION]
    errors = [run.last_error for run in mine if run.last_error]
    return {
        "name": step.name,
        "position": step.position,
        "kind": step.kind,
        "status": forward[-1].status if forward else None,
        "attempts": sum(run.attempts for run in forward),
        "compensation_status": compensation[-1].status if compensation else None,
        "last_error": errors[-1] if errors else None,
    }


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


# --- definitions ------------------------------------------------------------------------------


class RetryPolicySerializer(serializers.Serializer):
    max_attempts = serializers.IntegerField()
    initial_backoff = serializers.FloatField(help_text="seconds")
    multiplier = serializers.FloatField(source="backoff_multiplier")
    max_backoff = serializers.FloatField(help_text="seconds")
    jitter = serializers.FloatField(help_text="fraction of the delay")


class StepDefinitionSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    name = serializers.CharField()
    action = serializers.CharField()
    compensation = serializers.CharField(allow_blank=True)
    kind = serializers.ChoiceField(choices=StepKind.choices)
    retry = RetryPolicySerializer(source="*")
    timeout = serializers.FloatField(help_text="seconds")
    queue = serializers.CharField()


class DefinitionVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    is_active = serializers.BooleanField()
    input_schema = serializers.DictField(allow_null=True)
    created_at = serializers.DateTimeField()
    steps = StepDefinitionSerializer(many=True)


class DefinitionSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    latest_version = serializers.IntegerField(
        allow_null=True, help_text="the version a start uses; null when none is active"
    )
    versions = serializers.ListField(
        child=serializers.IntegerField(), source="version_numbers", help_text="newest first"
    )


class DefinitionSerializer(serializers.Serializer):
    name = serializers.CharField()
    latest_version = serializers.IntegerField(allow_null=True)
    latest = DefinitionVersionSerializer(allow_null=True)
    versions = DefinitionVersionSerializer(many=True, help_text="newest first")
