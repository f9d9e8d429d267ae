"""The API's URLs, mounted at /api/ by bpm/urls.py."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from bpm.api import views

app_name = "api"

v1 = [
    path("customers/", views.CustomerCreate.as_view(), name="customers"),
    path("customers/<str:customer_id>/", views.CustomerDetail.as_view(), name="customer"),
    path(
        "customers/<str:customer_id>/orders/",
        views.CustomerOrders.as_view(),
        name="customer-orders",
    ),
    path("orders/", views.OrderCreate.as_view(), name="orders"),
    path("orders/<str:order_id>/", views.OrderDetail.as_view(), name="order"),
    path("sagas/", views.SagaList.as_view(), name="sagas"),
    path("sagas/<str:saga_id>/", views.SagaDetail.as_view(), name="saga"),
    path("sagas/<str:saga_id>/events/", views.SagaEvents.as_view(), name="saga-events"),
    path("sagas/<str:saga_id>/retry/", views.SagaRetry.as_view(), name="saga-retry"),
    path("sagas/<str:saga_id>/skip/", views.SagaSkip.as_view(), name="saga-skip"),
    path("sagas/<str:saga_id>/compensate/", views.SagaCompensate.as_view(), name="saga-compensate"),
    path("sagas/<str:saga_id>/abort/", views.SagaAbort.as_view(), name="saga-abort"),
    path("definitions/", views.DefinitionList.as_view(), name="definitions"),
    path("definitions/<str:name>/", views.DefinitionDetail.as_view(), name="definition"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    # Anything else under /api/ is a JSON 404, like every other error here.
    re_path(r"^.*$", views.not_found, name="not-found"),
]
