"""Saga definitions: each version with its steps, policies and input schema."""

from __future__ import annotations

from rest_framework import serializers

from bpm.models import (
    StepKind,
)


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
    after = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="the steps it waits for; null: the step before it, []: starts with the saga",
    )


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
