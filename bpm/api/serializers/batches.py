"""Batch repairs: the request that starts one, and a batch's progress."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from bpm.api.serializers.base import RequestSerializer
from bpm.models import Batch, BatchAction


class BatchCreateSerializer(RequestSerializer):
    filter = serializers.JSONField(
        required=False,
        help_text='The saga list\'s filters as an object, e.g. {"status": "STUCK",'
        ' "definition": "place_order"}; or give them as query parameters of the POST, as the'
        " dashboard's list takes them. Without either, every saga matches.",
    )
    action = serializers.ChoiceField(choices=BatchAction.choices)
    patch = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="retry only: a JSON merge patch (RFC 7386) applied to each saga's input",
    )
    output = serializers.JSONField(
        required=False, allow_null=True, help_text="skip only: the output to record"
    )
    target_version = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="migrate only: the version (an integer) of the filter's definition to move"
        " the sagas to",
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, help_text="required unless previewing"
    )
    preview = serializers.BooleanField(
        default=False, help_text="answer 200 with counts per plan and refusal; start nothing"
    )

    def validate_filter(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object of the saga list's filters.")
        return value


class PlanSerializer(serializers.Serializer):
    plan = serializers.ListField(child=serializers.CharField())
    sagas = serializers.IntegerField()


class RefusalSerializer(serializers.Serializer):
    reason = serializers.CharField()
    sagas = serializers.IntegerField()
    examples = serializers.ListField(child=serializers.UUIDField())


class BatchPreviewSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    sampled = serializers.IntegerField(help_text="how many were previewed one by one")
    plans = PlanSerializer(many=True)
    refusals = RefusalSerializer(many=True)


class BatchSerializer(serializers.ModelSerializer[Batch]):
    filter = serializers.CharField(source="filter_query", help_text="the saga list's query string")
    settled = serializers.IntegerField(help_text="done + refused + failed")
    percent = serializers.IntegerField()
    dashboard = serializers.SerializerMethodField()
    target_version = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id",
            "status",
            "action",
            "filter",
            "patch",
            "output",
            "target_version",
            "reason",
            "actor",
            "cancelled_by",
            "created_at",
            "updated_at",
            "finished_at",
            "matched",
            "done",
            "refused",
            "failed",
            "settled",
            "percent",
            "dashboard",
        ]

    def get_target_version(self, batch: Batch) -> int | None:
        """Return the version a migrate batch moves its sagas to (null for other actions)."""
        return batch.target.version if batch.target is not None else None

    def get_dashboard(self, batch: Batch) -> str:
        return reverse("dashboard:batch", args=[batch.pk])
