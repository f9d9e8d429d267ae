"""The orders endpoints, included by the site's API under /api/v1/ (in its "api" namespace)."""

from __future__ import annotations

from django.urls import path

from orders.api import views

urlpatterns = [
    path(
        "customers/<str:customer_id>/orders/",
        views.CustomerOrders.as_view(),
        name="customer-orders",
    ),
    path("orders/", views.OrderCreate.as_view(), name="orders"),
    path("orders/<str:order_id>/", views.OrderDetail.as_view(), name="order"),
]
