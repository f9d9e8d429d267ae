"""Signals to sagas, task tokens answered from outside, and the human tasks' API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from bpm import answers
from bpm.api.pagination import TimePagination
from bpm.api.schema import errors as error_responses
from bpm.api.serializers.waits import (
    SignalReceiptSerializer,
    SignalSerializer,
    TaskCompleteSerializer,
    TaskRejectSerializer,
    TaskSerializer,
    TokenFailSerializer,
    TokenReceiptSerializer,
    TokenSucceedSerializer,
)
from bpm.api.throttling import AnonymousThrottle
from bpm.api.views.base import ApiView, validated
from bpm.models import StepRun, Wait

SAGA_ID = OpenApiParameter("saga_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
SIGNAL = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)
TOKEN = OpenApiParameter(
    "token", OpenApiTypes.STR, OpenApiParameter.PATH, description="the task token, tt_…"
)
TASK_ID = OpenApiParameter("task_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class SagaSignal(ApiView):
    # The saga's owner (a client) or an operator: both may start sagas; the service scopes the
    # saga to what the user sees, so another client's saga is a 404.
    required_permissions = {"POST": ["bpm.start_saga"]}

    @extend_schema(
        tags=["sagas"],
        summary="Send a saga a signal",
        description="The payload becomes the output of the step waiting for the signal. A"
        " signal no step waits for yet is kept until one does. A saga keeps one signal per"
        " name: sending it again with the same payload answers 200 with `duplicate: true` and"
        " changes nothing; with another payload, 409.",
        parameters=[SAGA_ID, SIGNAL],
        request=SignalSerializer,
        responses={
            202: SignalReceiptSerializer,
            200: SignalReceiptSerializer,
            **error_responses(400, 404, 409, 415),
        },
    )
    def post(self, request: Request, saga_id: str, name: str) -> Response:
        data = validated(SignalSerializer, request.data)
        signal, duplicate = answers.signal_send(
            saga_id=saga_id, name=name, payload=data["payload"], user=request.user
        )
        receipt = {
            "saga": signal.saga_id,
            "signal": signal.name,
            "duplicate": duplicate,
            "consumed": signal.consumed_by_id is not None,
            "received_at": signal.received_at,
        }
        return Response(
            SignalReceiptSerializer(receipt).data,
            status=status.HTTP_200_OK if duplicate else status.HTTP_202_ACCEPTED,
        )


class TokenAnswer(ApiView):
    """Whoever holds the token may answer it: no sign-in, throttled per address like anonymous
    requests (a guessed token is a 404 that counts against the limit)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonymousThrottle]
    serializer: Any
    answer: Callable[..., StepRun]

    def post(self, request: Request, token: str) -> Response:
        data = validated(self.serializer, request.data)
        run = type(self).answer(token=token, **data)
        receipt = {"saga": run.saga_id, "step": run.step.name, "status": run.status}
        return Response(TokenReceiptSerializer(receipt).data)


def token_schema(summary: str, serializer: Any) -> Any:
    return extend_schema(
        tags=["tasks"],
        summary=summary,
        description="A task token is single use and expires with its step (its timeout, or the"
        " saga ending); a used or expired token answers 409, an unknown one 404.",
        parameters=[TOKEN],
        request=serializer,
        responses={200: TokenReceiptSerializer, **error_responses(400, 404, 409, 415)},
        auth=[],
    )


class TokenSucceed(TokenAnswer):
    serializer = TokenSucceedSerializer
    answer = staticmethod(answers.token_succeed)

    @token_schema("Complete the step waiting on a task token", TokenSucceedSerializer)
    def post(self, request: Request, token: str) -> Response:
        return super().post(request, token)


class TokenFail(TokenAnswer):
    serializer = TokenFailSerializer
    answer = staticmethod(answers.token_fail)

    @token_schema("Refuse the step waiting on a task token", TokenFailSerializer)
    def post(self, request: Request, token: str) -> Response:
        return super().post(request, token)


class OldestFirst(TimePagination):
    ordering = ("created_at", "id")


class TaskList(ApiView):
    pagination_class = OldestFirst

    @extend_schema(
        tags=["tasks"],
        summary="The open human tasks of the groups you are in, oldest first",
        responses={200: TaskSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        return self.paginated(answers.tasks_for(request.user), TaskSerializer)


class TaskDetail(ApiView):
    @extend_schema(
        tags=["tasks"],
        summary="A human task (members of its group only)",
        parameters=[TASK_ID],
        responses={200: TaskSerializer, **error_responses(403, 404)},
    )
    def get(self, request: Request, task_id: str) -> Response:
        return Response(TaskSerializer(answers.task_get(task_id, request.user)).data)


def task_schema(summary: str, request: Any = None) -> Any:
    return extend_schema(
        tags=["tasks"],
        summary=summary,
        parameters=[TASK_ID],
        request=request,
        responses={200: TaskSerializer, **error_responses(400, 403, 404, 409, 415)},
    )


def _task(task: Wait) -> Response:
    return Response(TaskSerializer(task).data)


class TaskClaim(ApiView):
    @task_schema("Claim a task: the others of the group can no longer complete it")
    def post(self, request: Request, task_id: str) -> Response:
        return _task(answers.task_claim(task_id=task_id, user=request.user))


class TaskUnclaim(ApiView):
    @task_schema("Give a claimed task back to its group")
    def post(self, request: Request, task_id: str) -> Response:
        return _task(answers.task_unclaim(task_id=task_id, user=request.user))


class TaskComplete(ApiView):
    @task_schema("Complete a task with its form's data (the step's output)", TaskCompleteSerializer)
    def post(self, request: Request, task_id: str) -> Response:
        data = validated(TaskCompleteSerializer, request.data)
        return _task(answers.task_complete(task_id=task_id, user=request.user, data=data["data"]))


class TaskReject(ApiView):
    @task_schema("Reject a task with a reason: its step is refused", TaskRejectSerializer)
    def post(self, request: Request, task_id: str) -> Response:
        data = validated(TaskRejectSerializer, request.data)
        return _task(answers.task_reject(task_id=task_id, user=request.user, reason=data["reason"]))
