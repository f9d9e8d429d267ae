"""The API's views: each turns a request into one service call and its result into a response.

Serializers validate and shape; services do the work and raise the errors that bpm.api.errors
turns into responses. Creating POSTs run through bpm.api.idempotency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bpm import errors, services
from bpm.api import queries
from bpm.api.errors import error_body
from bpm.api.idempotency import idempotent
from bpm.api.pagination import NewestFirst, OldestEventFirst, TimePagination
from bpm.api.schema import CREATE_PARAMETERS
from bpm.api.schema import errors as error_responses
from bpm.api.serializers import (
    ActionSerializer,
    CustomerCreateSerializer,
    CustomerSerializer,
    DefinitionSerializer,
    DefinitionSummarySerializer,
    EventSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    PreviewSerializer,
    RetrySerializer,
    SagaDetailSerializer,
    SagaFilterSerializer,
    SagaSerializer,
    SagaStartSerializer,
    SkipSerializer,
)
from orders import services as orders
from payments import services as payments
from payments.models import Customer

SAGA_ID = OpenApiParameter("saga_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
CUSTOMER_ID = OpenApiParameter("customer_id", OpenApiTypes.INT, OpenApiParameter.PATH)
ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class ApiView(APIView):
    """Throttles before checking permissions, so an anonymous flood meets 429 as well as 401."""

    required_permissions: dict[str, list[str]] = {}
    pagination_class: type[TimePagination] | None = None

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


def created(request: Request, data: Any, view_name: str, pk: Any) -> Response:
    """Return a 201 with the new resource and its URL in Location."""
    location = request.build_absolute_uri(reverse(view_name, args=[pk]))
    return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})


# --- customers and orders ---------------------------------------------------------------------


def customer_data(customer: Customer) -> dict[str, Any]:
    credit = payments.customer_available_credit(customer_id=customer.pk)
    return CustomerSerializer(customer, context={"available_credit": credit}).data


class CustomerCreate(ApiView):
    required_permissions = {"POST": ["payments.add_customer"]}

    @extend_schema(
        tags=["customers"],
        summary="Open a customer account",
        request=CustomerCreateSerializer,
        responses={201: CustomerSerializer, **error_responses(400, 409, 415, 422)},
        parameters=CREATE_PARAMETERS,
    )
    def post(self, request: Request) -> Response:
        data = validated(CustomerCreateSerializer, request.data)

        def create() -> Response:
            customer = payments.customer_create(**data)
            return created(request, customer_data(customer), "api:customer", customer.pk)

        return idempotent(request, create)


class CustomerDetail(ApiView):
    required_permissions = {"GET": ["payments.view_customer"]}

    @extend_schema(
        tags=["customers"],
        summary="A customer and their available credit",
        parameters=[CUSTOMER_ID],
        responses={200: CustomerSerializer, **error_responses(404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        pk = queries.parse_id(customer_id, "customer")
        return Response(customer_data(payments.customer_get(customer_id=pk)))


class CustomerOrders(ApiView):
    required_permissions = {"GET": ["payments.view_customer", "orders.view_order"]}
    pagination_class = NewestFirst

    @extend_schema(
        tags=["customers"],
        summary="A customer's orders, newest first",
        parameters=[CUSTOMER_ID],
        responses={200: OrderSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        customer = payments.customer_get(customer_id=queries.parse_id(customer_id, "customer"))
        return self.paginated(orders.orders_for_customer(customer_id=customer.pk), OrderSerializer)


class OrderCreate(ApiView):
    required_permissions = {"POST": ["orders.add_order", "bpm.start_saga"]}

    @extend_schema(
        tags=["orders"],
        summary="Place an order: starts its place_order saga",
        description="The order is created PENDING, in the same transaction as its saga; the saga"
        " approves it or rejects it (INSUFFICIENT_CREDIT, UNKNOWN_CUSTOMER, PAYMENT_DECLINED)."
        " Poll GET /orders/{id}/ for the outcome.",
        request=OrderCreateSerializer,
        responses={201: OrderSerializer, **error_responses(400, 409, 415, 422)},
        parameters=CREATE_PARAMETERS,
    )
    def post(self, request: Request) -> Response:
        data = validated(OrderCreateSerializer, request.data)

        def create() -> Response:
            order = orders.order_place(
                customer_id=data["customer_id"],
                product_ids=data["products"],
                total=data["total"],
                payment_method=data["payment_method"],
                message=data["notification"]["message"] if "notification" in data else None,
                email=data.get("email"),
                user=request.user,
            )
            return created(request, OrderSerializer(order).data, "api:order", order.pk)

        return idempotent(request, create)


class OrderDetail(ApiView):
    required_permissions = {"GET": ["orders.view_order"]}

    @extend_schema(
        tags=["orders"],
        summary="An order and its state",
        parameters=[ORDER_ID],
        responses={200: OrderSerializer, **error_responses(404)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        order = orders.order_get(order_id=queries.parse_id(order_id, "order"))
        return Response(OrderSerializer(order).data)


# --- sagas ------------------------------------------------------------------------------------


def saga_data(saga_id: Any) -> dict[str, Any]:
    return SagaDetailSerializer(queries.saga_with_runs(str(saga_id))).data


class SagaList(ApiView):
    required_permissions = {"GET": ["bpm.view_sagainstance"], "POST": ["bpm.start_saga"]}
    pagination_class = NewestFirst

    @extend_schema(
        tags=["sagas"],
        summary="Sagas, newest first, filtered",
        parameters=[SagaFilterSerializer],
        responses={200: SagaSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        # A plain dict: DRF reads an empty query value as "not given", the schema as "empty".
        filters = validated(SagaFilterSerializer, request.query_params.dict())
        return self.paginated(queries.sagas_matching(**filters), SagaSerializer)

    @extend_schema(
        tags=["sagas"],
        summary="Start a saga",
        request=SagaStartSerializer,
        responses={201: SagaDetailSerializer, **error_responses(400, 409, 415, 422)},
        parameters=CREATE_PARAMETERS,
    )
    def post(self, request: Request) -> Response:
        data = validated(SagaStartSerializer, request.data)

        def create() -> Response:
            saga = start_saga(request, data)
            return created(request, saga_data(saga.id), "api:saga", saga.id)

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
        )
    except errors.NotFound as exc:
        field = "version" if data.get("version") is not None else "definition"
        raise exceptions.ValidationError({field: [str(exc)]}) from None


class SagaDetail(ApiView):
    required_permissions = {"GET": ["bpm.view_sagainstance"]}

    @extend_schema(
        tags=["sagas"],
        summary="A saga: its status, input, context and steps",
        parameters=[SAGA_ID],
        responses={200: SagaDetailSerializer, **error_responses(404)},
    )
    def get(self, request: Request, saga_id: str) -> Response:
        return Response(saga_data(saga_id))


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
        saga = services.saga_get(queries.saga_uuid(saga_id))
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
        return Response(saga_data(result.saga.id), status=status.HTTP_202_ACCEPTED)


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


# --- definitions ------------------------------------------------------------------------------


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


def not_found(request: HttpRequest) -> JsonResponse:
    """Answer a URL under /api/ that names no endpoint, in the API's error shape."""
    body = error_body("not_found", f"no API endpoint at {request.path}; see /api/docs/")
    return JsonResponse(body, status=status.HTTP_404_NOT_FOUND)
