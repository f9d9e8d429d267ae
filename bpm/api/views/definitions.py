"""Saga definitions and their versions."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from bpm import drafts
from bpm.api import queries
from bpm.api.idempotency import idempotent
from bpm.api.schema import errors as error_responses
from bpm.api.serializers.base import RequestSerializer
from bpm.api.serializers.composing import (
    ApproveSerializer,
    DefinitionShapeSerializer,
    RejectSerializer,
    VersionShapeSerializer,
    declaration_from,
    version_shape,
)
from bpm.api.serializers.definitions import DefinitionSerializer, DefinitionSummarySerializer
from bpm.api.views.base import ApiView, creating, validated
from bpm.errors import Conflict, DefinitionInvalid, InvalidInput
from bpm.models import SagaDefinition
from bpm.schemas import SchemaRefused


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


def version_data(definition: SagaDefinition) -> dict[str, Any]:
    return VersionShapeSerializer(version_shape(definition)).data


class DefinitionCompose(DefinitionList):
    """GET as DefinitionList; POST composes a draft version (designers)."""

    required_permissions = {
        "GET": ["bpm.view_sagadefinition"],
        "POST": ["bpm.compose_sagadefinition"],
    }

    @creating(
        "definitions",
        "Compose a draft version from the designers' shape (a second designer approves it)",
        DefinitionShapeSerializer,
        VersionShapeSerializer,
        description="Needs bpm.compose_sagadefinition (designers). The steps are validated as"
        " the admin's composer validates them. A draft starts no saga until another designer"
        " approves it. When the published version or a pending draft already has these steps,"
        " it answers 200 with that version and makes nothing.",
    )
    def post(self, request: Request) -> Response:
        data = validated(DefinitionShapeSerializer, request.data)
        declaration = declaration_from(data)

        def create() -> Response:
            definition, made = compose(declaration, request.user, data["reason"])
            body = version_data(definition)
            if not made:
                return Response(body)
            url = reverse("api:definition-version", args=[definition.name, definition.version])
            location = request.build_absolute_uri(url)
            return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

        return idempotent(request, create)


def compose(declaration: Any, user: Any, reason: str) -> tuple[SagaDefinition, bool]:
    """Compose the draft, reporting the engine's refusal per field."""
    try:
        with transaction.atomic():
            return drafts.definition_compose(declaration=declaration, user=user, reason=reason)
    except SchemaRefused as exc:
        raise exceptions.ValidationError({"input_schema": str(exc).split("; ")}) from None
    except DefinitionInvalid as exc:
        raise exceptions.ValidationError({"steps": str(exc).split("; ")}) from None
    except InvalidInput as exc:
        raise exceptions.ValidationError({exc.path or "input_schema": [str(exc)]}) from None
    except IntegrityError:
        raise Conflict(
            f"another version of {declaration.name!r} was composed at the same moment;"
            " send the request again"
        ) from None


VERSION_PARAMETERS = [
    OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH),
    OpenApiParameter("version", OpenApiTypes.INT, OpenApiParameter.PATH),
]


class DefinitionVersions(ApiView):
    required_permissions = {"GET": ["bpm.view_sagadefinition"]}

    @extend_schema(
        tags=["definitions"],
        summary="Every version of a definition in the designers' shape, newest first",
        description="Drafts and rejected versions are listed only for designers.",
        parameters=[VERSION_PARAMETERS[0]],
        responses={200: VersionShapeSerializer(many=True), **error_responses(404)},
    )
    def get(self, request: Request, name: str) -> Response:
        versions = queries.versions_visible(name, request.user)
        return Response([version_data(version) for version in versions])


class DefinitionVersionDetail(ApiView):
    required_permissions = {"GET": ["bpm.view_sagadefinition"]}

    @extend_schema(
        tags=["definitions"],
        summary="One version in the designers' shape, with its review",
        parameters=VERSION_PARAMETERS,
        responses={200: VersionShapeSerializer, **error_responses(404)},
    )
    def get(self, request: Request, name: str, version: str) -> Response:
        return Response(version_data(queries.version_visible(name, version, request.user)))


class DefinitionReview(ApiView):
    """Approve or reject a draft: another designer than its composer approves (four eyes)."""

    required_permissions = {"POST": ["bpm.compose_sagadefinition"]}
    serializer: type[RequestSerializer] = ApproveSerializer

    def review(self, definition: SagaDefinition, user: Any, text: str) -> SagaDefinition:
        return drafts.definition_approve(definition_id=definition.pk, user=user, comment=text)

    def post(self, request: Request, name: str, version: str) -> Response:
        data = validated(self.serializer, request.data)
        definition = queries.version_visible(name, version, request.user)
        (text,) = data.values()
        return Response(version_data(self.review(definition, request.user, text)))


@extend_schema_view(
    post=extend_schema(
        tags=["definitions"],
        summary="Approve and publish a draft (a designer other than its composer)",
        description="Needs bpm.compose_sagadefinition; the draft's composer is refused (403)."
        " New sagas of its name then start on it.",
        request=ApproveSerializer,
        responses={200: VersionShapeSerializer, **error_responses(400, 404, 409, 415)},
        parameters=VERSION_PARAMETERS,
    )
)
class DefinitionApprove(DefinitionReview):
    serializer = ApproveSerializer


@extend_schema_view(
    post=extend_schema(
        tags=["definitions"],
        summary="Reject a draft (or withdraw one's own): it will never start a saga",
        request=RejectSerializer,
        responses={200: VersionShapeSerializer, **error_responses(400, 404, 409, 415)},
        parameters=VERSION_PARAMETERS,
    )
)
class DefinitionReject(DefinitionReview):
    serializer = RejectSerializer

    def review(self, definition: SagaDefinition, user: Any, text: str) -> SagaDefinition:
        return drafts.definition_reject(definition_id=definition.pk, user=user, reason=text)
