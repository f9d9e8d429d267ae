"""Customers: the accounts a shop opens, and their available credit."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from bpm.api import queries
from bpm.api.idempotency import idempotent
from bpm.api.schema import errors as error_responses
from bpm.api.views.base import ApiView, created, creating, validated
from payments import services
from payments.api.serializers import CustomerCreateSerializer, CustomerSerializer
from payments.models import Customer

CUSTOMER_ID = OpenApiParameter("customer_id", OpenApiTypes.INT, OpenApiParameter.PATH)
# Reading a customer needs the view permission (every row) or the create permission (the rows
# one created, as bpm.ownership scopes them).
READ_CUSTOMERS = ("payments.view_customer", "payments.add_customer")


def customer_data(customer: Customer) -> dict[str, Any]:
    """Return the customer's response body, with the credit it has left."""
    credit = services.customer_available_credit(customer_id=customer.pk)
    return CustomerSerializer(customer, context={"available_credit": credit}).data


class CustomerCreate(ApiView):
    required_permissions = {"POST": ["payments.add_customer"]}

    @creating("customers", "Open a customer account", CustomerCreateSerializer, CustomerSerializer)
    def post(self, request: Request) -> Response:
        data = validated(CustomerCreateSerializer, request.data)

        def create() -> Response:
            customer = services.customer_create(**data, owner=request.user)
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
        return Response(customer_data(services.customer_get(customer_id=pk, user=request.user)))
