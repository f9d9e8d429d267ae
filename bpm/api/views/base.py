"""What every view shares: throttling before permissions, validation, 201s, JSON 404s.

Each view turns a request into one service call and its result into a response; serializers
validate and shape, services do the work and raise the errors bpm.api.errors turns into
responses. Creating POSTs run through bpm.api.idempotency.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from bpm.api.errors import error_body
from bpm.api.pagination import TimePagination
from bpm.api.schema import CREATE_PARAMETERS
from bpm.api.schema import errors as error_responses


class ApiView(APIView):
    """Throttles before checking permissions, so an anonymous flood meets 429 as well as 401."""

    required_permissions: dict[str, Any] = {}
    pagination_class: type[TimePagination] | None = None
    # A list's filters, besides the page's cursor and size that every list takes.
    filters: tuple[str, ...] = ()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(
            request
        )
        request.version, request.versioning_scheme = self.determine_version(
            request, *args, **kwargs
        )
        self.perform_authentication(request)
        self.check_throttles(request)
        self.check_permissions(request)
        if request.method == "GET" and self.pagination_class is not None:
            self.refuse_unknown_parameters(request)

    def refuse_unknown_parameters(self, request: Request) -> None:
        """Raise a 400 naming each query parameter the list does not take, rather than ignore a
        misspelt filter and answer with rows it did not ask for."""
        assert self.pagination_class is not None
        paging = self.pagination_class
        known = {*self.filters, paging.cursor_query_param, paging.page_size_query_param}
        # DRF's own ?format= picks a renderer (JSON is the only one): allowed, not advertised.
        unknown = sorted(set(request.query_params) - known - {api_settings.URL_FORMAT_OVERRIDE})
        if unknown:
            message = f"Unknown query parameter; this list takes {', '.join(sorted(known))}."
            raise exceptions.ValidationError({name: [message] for name in unknown})

    def paginated(
        self, queryset: QuerySet[Any], serializer: type[serializers.Serializer]
    ) -> Response:
        """Return one page of `queryset`, shaped by `serializer`."""
        assert self.pagination_class is not None
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer(page, many=True).data)


def validated(serializer: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Return the data the serializer accepts, or raise its 400."""
    checked = serializer(data=data)
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)


def creating(
    tag: str, summary: str, request: type[serializers.Serializer], response: Any, **more: Any
) -> Any:
    """Return the schema of a POST that creates: 201, its errors, Idempotency-Key, Location."""
    return extend_schema(
        tags=[tag],
        summary=summary,
        request=request,
        responses={201: response, **error_responses(400, 409, 415, 422)},
        parameters=CREATE_PARAMETERS,
        **more,
    )


def created(request: Request, data: Any, view_name: str, pk: Any) -> Response:
    """Return a 201 with the new resource and its URL in Location."""
    location = request.build_absolute_uri(reverse(view_name, args=[pk]))
    return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})


@csrf_exempt
def not_found(request: HttpRequest) -> JsonResponse:
    """Answer a URL under /api/ that names no endpoint, in the API's error shape."""
    body = error_body("not_found", f"no API endpoint at {request.path}; see /api/docs/")
    return JsonResponse(body, status=status.HTTP_404_NOT_FOUND)
