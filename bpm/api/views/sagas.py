"""Sagas: start, list, read, the timeline, and the operator actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from bpm import errors, services
from bpm.api import queries
from bpm.api.idempotency import idempotent
from bpm.api.pagination import NewestFirst, OldestEventFirst
from bpm.api.permissions import READ_SAGAS
from bpm.api.schema import errors as error_responses
from bpm.api.serializers.sagas import (
    ActionSerializer,
    AssignSerializer,
    CommentSerializer,
    DefinitionPauseResultSerializer,
    DefinitionPauseSerializer,
    EventSerializer,
    OwnershipSerializer,
    PreviewSerializer,
    RerunSerializer,
    RetrySerializer,
    SagaDetailSerializer,
    SagaFilterSerializer,
    SagaSerializer,
    SagaStartSerializer,
    SkipSerializer,
    error_detail_for,
)
from bpm.api.views.base import ApiView, created, creating, validated

SAGA_ID = OpenApiParameter("saga_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def saga_data(saga_id: Any, user: Any) -> dict[str, Any]:
    saga = queries.saga_with_runs(str(saga_id), user)
    return SagaDetailSerializer(saga, context=error_detail_for(user)).data


class SagaList(ApiView):
    required_permissions = {"GET": [READ_SAGAS], "POST": ["bpm.start_saga"]}
    pagination_class = NewestFirst
    filters = tuple(SagaFilterSerializer().fields)

    @extend_schema(
        tags=["sagas"],
        summary="Sagas, newest first, filtered",
        parameters=[SagaFilterSerializer],
        responses={200: SagaSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        # A plain dict: DRF reads an empty query value as "not given", the schema as "empty".
        filters = validated(SagaFilterSerializer, request.query_params.dict())
        return self.paginated(queries.sagas_matching(user=request.user, **filters), SagaSerializer)

    @creating("sagas", "Start a saga", SagaStartSerializer, SagaDetailSerializer)
    def post(self, request: Request) -> Response:
        data = validated(SagaStartSerializer, request.data)

        def create() -> Response:
            saga = start_saga(request, data)
            return created(request, saga_data(saga.id, request.user), "api:saga", saga.id)

        return idempotent(request, create)


def start_saga(request: Request, data: dict[str, Any]) -> Any:
    """Start the saga, reporting an unknown definition or version as bad input."""
    try:
        return services.saga_start(
            definition=data["definition"],
            version=data.get("version"),
            input=data["input"],
            business_key=data["business_key"],
            user=request.user,
            owner=request.user,
        )
    except errors.NotFound as exc:
        field = "version" if data.get("version") is not None else "definition"
        raise exceptions.ValidationError({field: [str(exc)]}) from None


class SagaDetail(ApiView):
    required_permissions = {"GET": [READ_SAGAS]}

    @extend_schema(
        tags=["sagas"],
        summary="A saga: its status, input, context and steps",
        parameters=[SAGA_ID],
        responses={200: SagaDetailSerializer, **error_responses(404)},
    )
    def get(self, request: Request, saga_id: str) -> Response:
        return Response(saga_data(saga_id, request.user))


class SagaEvents(ApiView):
    required_permissions = {"GET": ["bpm.view_sagainstance", "bpm.view_sagaevent"]}
    pagination_class = OldestEventFirst

    @extend_schema(
        tags=["sagas"],
        summary="A saga's timeline, oldest first",
        parameters=[SAGA_ID],
        responses={200: EventSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request, saga_id: str) -> Response:
        saga = queries.saga_visible(saga_id, request.user)
        return self.paginated(queries.saga_events(saga.id), EventSerializer)


class SagaAction(ApiView):
    """An operator action: 202 with the saga once applied, 200 with the plan for a preview."""

    action = ""
    serializer: type[ActionSerializer] = ActionSerializer
    perform: Callable[..., services.ActionResult]

    def post(self, request: Request, saga_id: str) -> Response:
        data = validated(self.serializer, request.data)
        result = type(self).perform(saga_id=queries.saga_uuid(saga_id), user=request.user, **data)
        if not result.applied:
            plan = {
                "action": result.action,
                "saga": result.saga.id,
                "will_run": [{"step": step, "direction": way} for step, way in result.will_run],
                "plan": result.describe(),
            }
            return Response(PreviewSerializer(plan).data)
        return Response(saga_data(result.saga.id, request.user), status=status.HTTP_202_ACCEPTED)


def action_schema(action: str, serializer: type[ActionSerializer], summary: str) -> Any:
    return extend_schema_view(
        post=extend_schema(
            tags=["sagas"],
            summary=summary,
            description="Needs the bpm."
            f"{action}_saga permission (operators). With `preview: true` it answers 200 with"
            " the steps and compensations that would run, in order, and changes nothing.",
            request=serializer,
            responses={
                200: PreviewSerializer,
                202: SagaDetailSerializer,
                **error_responses(400, 404, 409, 415),
            },
            parameters=[SAGA_ID],
        )
    )


@action_schema("retry", RetrySerializer, "Retry a stuck saga from its failed step")
class SagaRetry(SagaAction):
    required_permissions = {"POST": ["bpm.retry_saga"]}
    serializer = RetrySerializer
    perform = staticmethod(services.saga_retry)


@action_schema("skip", SkipSerializer, "Skip a stuck saga's failed step, recording its output")
class SagaSkip(SagaAction):
    required_permissions = {"POST": ["bpm.skip_saga"]}
    serializer = SkipSerializer
    perform = staticmethod(services.saga_skip)


@action_schema("compensate", ActionSerializer, "Compensate a stuck saga's finished steps")
class SagaCompensate(SagaAction):
    required_permissions = {"POST": ["bpm.compensate_saga"]}
    perform = staticmethod(services.saga_compensate)


@action_schema("abort", ActionSerializer, "Abort a stuck saga: resolved by hand")
class SagaAbort(SagaAction):
    required_permissions = {"POST": ["bpm.abort_saga"]}
    perform = staticmethod(services.saga_abort)


@action_schema(
    "retry", RerunSerializer, "Rerun a STUCK or COMPLETED saga from a step (and every later one)"
)
class SagaRerun(SagaAction):
    required_permissions = {"POST": ["bpm.retry_saga"]}
    serializer = RerunSerializer
    perform = staticmethod(services.saga_rerun)


@action_schema("retry", ActionSerializer, "Pause a saga: no new step starts until resumed")
class SagaPause(SagaAction):
    required_permissions = {"POST": ["bpm.retry_saga"]}
    perform = staticmethod(services.saga_pause)


@action_schema("retry", ActionSerializer, "Resume a paused saga")
class SagaResume(SagaAction):
    required_permissions = {"POST": ["bpm.retry_saga"]}
    perform = staticmethod(services.saga_resume)


class DefinitionPauseAction(ApiView):
    """Pause or resume every unfinished saga of a definition version (and those started later)."""

    required_permissions = {"POST": ["bpm.retry_saga"]}
    perform: Callable[..., services.DefinitionPauseResult]

    @extend_schema(
        tags=["definitions"],
        request=DefinitionPauseSerializer,
        responses={200: DefinitionPauseResultSerializer, **error_responses(400, 404, 409, 415)},
        description="Needs the bpm.retry_saga permission (operators). With `preview: true` it"
        " answers how many sagas it would hold or let go, and changes nothing.",
    )
    def post(self, request: Request, name: str) -> Response:
        data = validated(DefinitionPauseSerializer, request.data)
        result = type(self).perform(name=name, user=request.user, **data)
        body = {
            "name": result.definition.name,
            "version": result.definition.version,
            "paused": result.definition.paused_at is not None,
            "sagas": result.sagas,
            "applied": result.applied,
        }
        return Response(DefinitionPauseResultSerializer(body).data)


class DefinitionPause(DefinitionPauseAction):
    perform = staticmethod(services.definition_pause)


class DefinitionResume(DefinitionPauseAction):
    perform = staticmethod(services.definition_resume)


def ownership_data(saga: Any) -> dict[str, Any]:
    assignee = saga.assignee.get_username() if saga.assignee_id else None
    body = {"saga": saga.id, "assignee": assignee, "acknowledged_at": saga.acknowledged_at}
    return OwnershipSerializer(body).data


OWNERSHIP_RESPONSES = {200: OwnershipSerializer, **error_responses(400, 404, 409, 415)}


class SagaAssign(ApiView):
    """Give a saga to an operator, or take it back (operators)."""

    required_permissions = {"POST": ["bpm.retry_saga"]}

    @extend_schema(
        tags=["sagas"],
        summary="Assign a saga to an operator (null unassigns)",
        request=AssignSerializer,
        responses=OWNERSHIP_RESPONSES,
        parameters=[SAGA_ID],
    )
    def post(self, request: Request, saga_id: str) -> Response:
        data = validated(AssignSerializer, request.data)
        saga = services.saga_assign(saga_id=queries.saga_uuid(saga_id), user=request.user, **data)
        return Response(ownership_data(saga))


class SagaAcknowledge(ApiView):
    """Record that an operator has seen a stuck saga."""

    required_permissions = {"POST": ["bpm.retry_saga"]}

    @extend_schema(
        tags=["sagas"],
        summary="Acknowledge a stuck saga",
        request=None,
        responses=OWNERSHIP_RESPONSES,
        parameters=[SAGA_ID],
    )
    def post(self, request: Request, saga_id: str) -> Response:
        saga = services.saga_acknowledge(saga_id=queries.saga_uuid(saga_id), user=request.user)
        return Response(ownership_data(saga))


class SagaComments(ApiView):
    """Comment on a saga; comments are COMMENTED events of its timeline (GET …/events/)."""

    required_permissions = {"POST": ["bpm.retry_saga"]}

    @extend_schema(
        tags=["sagas"],
        summary="Comment on a saga",
        request=CommentSerializer,
        responses={201: OwnershipSerializer, **error_responses(400, 404, 415)},
        parameters=[SAGA_ID],
    )
    def post(self, request: Request, saga_id: str) -> Response:
        data = validated(CommentSerializer, request.data)
        saga = services.saga_comment(
            saga_id=queries.saga_uuid(saga_id), text=data["text"], user=request.user
        )
        return Response(ownership_data(saga), status=status.HTTP_201_CREATED)
