"""The customers endpoints, included by the site's API under /api/v1/ (in its "api" namespace)."""

from __future__ import annotations

from django.urls import path

from payments.api import views

urlpatterns = [
    path("customers/", views.CustomerCreate.as_view(), name="customers"),
    path("customers/<str:customer_id>/", views.CustomerDetail.as_view(), name="customer"),
]
