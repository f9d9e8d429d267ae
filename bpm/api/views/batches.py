"""Batch repairs: start one on every saga a filter matches (or preview it), read its progress."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from bpm import batches
from bpm.api.pagination import NewestFirst
from bpm.api.schema import errors as error_responses
from bpm.api.serializers.batches import (
    BatchCreateSerializer,
    BatchPreviewSerializer,
    BatchSerializer,
)
from bpm.api.views.base import ApiView, created, validated
from bpm.models import Batch

# Starting a batch needs the permission of one of the actions (the service checks the one asked).
MAY_REPAIR = (
    "bpm.retry_saga",
    "bpm.skip_saga",
    "bpm.compensate_saga",
    "bpm.abort_saga",
    "bpm.migrate_saga",
)
BATCH_ID = OpenApiParameter("batch_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class BatchList(ApiView):
    required_permissions = {"GET": ["bpm.view_batch"], "POST": [MAY_REPAIR]}
    pagination_class = NewestFirst

    @extend_schema(
        tags=["batches"],
        summary="Batch repairs, newest first",
        responses={200: BatchSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        return self.paginated(Batch.objects.select_related("target"), BatchSerializer)

    @extend_schema(
        tags=["batches"],
        summary="Retry, skip, compensate, abort or migrate every saga a filter matches",
        description="Operators only. The filter is the dashboard saga list's: as query parameters"
        " of this POST, or as the body's `filter` object (not both). 201 with the batch, which"
        " the workers then run; with `preview: true`, 200 with how many match, the plans with"
        " their counts and who would be refused and why (over a sample of 200), starting nothing."
        " `migrate` moves RUNNING or STUCK sagas of the filter's `definition` to its version"
        " `target_version`, when the steps they ran map onto it (docs/processes.md).",
        request=BatchCreateSerializer,
        responses={
            200: BatchPreviewSerializer,
            201: BatchSerializer,
            **error_responses(400, 403, 415),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(BatchCreateSerializer, request.data)
        query = _filter(request, data)
        arguments: dict[str, Any] = {
            "query": query,
            "action": data["action"],
            "patch": data.get("patch"),
            "output": data.get("output"),
            "target_version": data.get("target_version"),
            "user": request.user,
        }
        try:
            if data["preview"]:
                return Response(_preview(batches.batch_preview(**arguments)))
            batch = batches.batch_create(**arguments, reason=data.get("reason", ""))
        except batches.InvalidFilter as exc:
            raise exceptions.ValidationError({"filter": exc.fields}) from None
        return created(request, BatchSerializer(batch).data, "api:batch", batch.pk)


def _filter(request: Request, data: dict[str, Any]) -> Any:
    if request.query_params and "filter" in data:
        raise exceptions.ValidationError(
            {"filter": ["Give the filter as query parameters or in the body, not both."]}
        )
    return data.get("filter", request.query_params)


def _preview(preview: batches.Preview) -> Any:
    return BatchPreviewSerializer(
        {
            "matched": preview.matched,
            "sampled": preview.sampled,
            "plans": [{"plan": plan, "sagas": count} for plan, count in preview.plans],
            "refusals": [
                {"reason": why, "sagas": count, "examples": examples}
                for why, count, examples in preview.refusals
            ],
        }
    ).data


class BatchDetail(ApiView):
    required_permissions = {"GET": ["bpm.view_batch"]}

    @extend_schema(
        tags=["batches"],
        summary="A batch repair's progress",
        parameters=[BATCH_ID],
        responses={200: BatchSerializer, **error_responses(404)},
    )
    def get(self, request: Request, batch_id: str) -> Response:
        return Response(BatchSerializer(batches.batch_get(batch_id)).data)


class BatchCancel(ApiView):
    required_permissions = {"POST": [MAY_REPAIR]}

    @extend_schema(
        tags=["batches"],
        summary="Cancel a batch repair before its next saga",
        request=None,
        parameters=[BATCH_ID],
        responses={200: BatchSerializer, **error_responses(403, 404, 409)},
    )
    def post(self, request: Request, batch_id: str) -> Response:
        batch = batches.batch_cancel(batch_id=batches.batch_get(batch_id).pk, user=request.user)
        return Response(BatchSerializer(batch).data, status=status.HTTP_200_OK)
