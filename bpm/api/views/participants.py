"""Customers and orders: what an online shop's backend calls."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from bpm.api import queries
from bpm.api.idempotency import idempotent
from bpm.api.pagination import NewestFirst
from bpm.api.permissions import READ_CUSTOMERS, READ_ORDERS
from bpm.api.schema import errors as error_responses
from bpm.api.serializers.participants import (
    CustomerCreateSerializer,
    CustomerSerializer,
    OrderCreateSerializer,
    OrderSerializer,
)
from bpm.api.views.base import ApiView, created, creating, validated
from orders import services as orders
from payments import services as payments
from payments.models import Customer

CUSTOMER_ID = OpenApiParameter("customer_id", OpenApiTypes.INT, OpenApiParameter.PATH)
ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def customer_data(customer: Customer) -> dict[str, Any]:
    credit = payments.customer_available_credit(customer_id=customer.pk)
    return CustomerSerializer(customer, context={"available_credit": credit}).data


class CustomerCreate(ApiView):
    required_permissions = {"POST": ["payments.add_customer"]}

    @creating("customers", "Open a customer account", CustomerCreateSerializer, CustomerSerializer)
    def post(self, request: Request) -> Response:
        data = validated(CustomerCreateSerializer, request.data)

        def create() -> Response:
            customer = payments.customer_create(**data, owner=request.user)
            return created(request, customer_data(customer), "api:customer", customer.pk)

        return idempotent(request, create)


class CustomerDetail(ApiView):
    required_permissions = {"GET": [READ_CUSTOMERS]}

    @extend_schema(
        tags=["customers"],
        summary="A customer and their available credit",
        parameters=[CUSTOMER_ID],
        responses={200: CustomerSerializer, **error_responses(404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        pk = queries.parse_id(customer_id, "customer")
        return Response(customer_data(payments.customer_get(customer_id=pk, user=request.user)))


class CustomerOrders(ApiView):
    required_permissions = {"GET": [READ_CUSTOMERS, READ_ORDERS]}
    pagination_class = NewestFirst

    @extend_schema(
        tags=["customers"],
        summary="A customer's orders, newest first",
        parameters=[CUSTOMER_ID],
        responses={200: OrderSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        pk = queries.parse_id(customer_id, "customer")
        customer = payments.customer_get(customer_id=pk, user=request.user)
        history = orders.orders_for_customer(customer_id=customer.pk, user=request.user)
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
            order = orders.order_place(
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
        order = orders.order_get(order_id=pk, user=request.user)
        return Response(OrderSerializer(order).data)
