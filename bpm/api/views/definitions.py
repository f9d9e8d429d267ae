"""Saga definitions and their versions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from bpm.api import queries
from bpm.api.schema import errors as error_responses
from bpm.api.serializers.definitions import DefinitionSerializer, DefinitionSummarySerializer
from bpm.api.views.base import ApiView


class DefinitionList(ApiView):
    required_permissions = {"GET": ["bpm.view_sagadefinition"]}

    @extend_schema(
        tags=["definitions"],
        summary="Saga definitions, by name",
        responses={200: DefinitionSummarySerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(DefinitionSummarySerializer(queries.definitions_by_name(), many=True).data)


class DefinitionDetail(ApiView):
    required_permissions = {"GET": ["bpm.view_sagadefinition"]}

    @extend_schema(
        tags=["definitions"],
        summary="A definition's latest version and every version, with steps and policies",
        responses={200: DefinitionSerializer, **error_responses(404)},
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(DefinitionSerializer(queries.definition_versions(name)).data)
