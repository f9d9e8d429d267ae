"""Orders: placing one (its place_order saga decides it), reading it, a customer's history.

A customer's history is answered 404 for a customer the caller may not see, but customers are
another app's: the site names their selector and read permissions in the ORDERS_CUSTOMER_LOOKUP
and ORDERS_CUSTOMER_READ_PERMISSIONS settings, since a participant never imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from bpm.api import queries
from bpm.api.idempotency import idempotent
from bpm.api.pagination import NewestFirst
from bpm.api.schema import errors as error_responses
from bpm.api.views.base import ApiView, created, creating, validated
from orders import services
from orders.api.serializers import OrderCreateSerializer, OrderSerializer

CUSTOMER_ID = OpenApiParameter("customer_id", OpenApiTypes.INT, OpenApiParameter.PATH)
ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.INT, OpenApiParameter.PATH)
# Reading an order needs the view permission (every row) or the create permission (the rows one
# created, as bpm.ownership scopes them).
READ_ORDERS = ("orders.view_order", "orders.add_order")


def customer_get(*, customer_id: int, user: Any) -> Any:
    """Return the customer `user` may see, or raise the engine's NotFound (the site's selector)."""
    lookup: Callable[..., Any] = import_string(settings.ORDERS_CUSTOMER_LOOKUP)
    return lookup(customer_id=customer_id, user=user)


class CustomerOrders(ApiView):
    required_permissions = {"GET": [tuple(settings.ORDERS_CUSTOMER_READ_PERMISSIONS), READ_ORDERS]}
    pagination_class = NewestFirst

    @extend_schema(
        tags=["customers"],
        summary="A customer's orders, newest first",
        parameters=[CUSTOMER_ID],
        responses={200: OrderSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        pk = queries.parse_id(customer_id, "customer")
        customer = customer_get(customer_id=pk, user=request.user)
        history = services.orders_for_customer(customer_id=customer.pk, user=request.user)
        return self.paginated(history, OrderSerializer)


class OrderCreate(ApiView):
    required_permissions = {"POST": ["orders.add_order", "bpm.start_saga"]}

    @creating(
        "orders",
        "Place an order: starts its place_order saga",
        OrderCreateSerializer,
        OrderSerializer,
        description="The order is created PENDING, in the same transaction as its saga; the saga"
        " approves it or rejects it (INSUFFICIENT_CREDIT, UNKNOWN_CUSTOMER, PAYMENT_DECLINED)."
        " Poll GET /orders/{id}/ for the outcome.",
    )
    def post(self, request: Request) -> Response:
        data = validated(OrderCreateSerializer, request.data)

        def create() -> Response:
            order = services.order_place(
                customer_id=data["customer_id"],
                product_ids=data["products"],
                total=data["total"],
                payment_method=data["payment_method"],
                user=request.user,
                owner=request.user,
            )
            return created(request, OrderSerializer(order).data, "api:order", order.pk)

        return idempotent(request, create)


class OrderDetail(ApiView):
    required_permissions = {"GET": [READ_ORDERS]}

    @extend_schema(
        tags=["orders"],
        summary="An order and its state",
        parameters=[ORDER_ID],
        responses={200: OrderSerializer, **error_responses(404)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        pk = queries.parse_id(order_id, "order")
        order = services.order_get(order_id=pk, user=request.user)
        return Response(OrderSerializer(order).data)
