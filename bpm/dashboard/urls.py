"""The dashboard's URLs, mounted under /admin/dashboard/ (namespace "dashboard")."""

from django.urls import path

from bpm.dashboard.attempts import attempt_page
from bpm.dashboard.definitions_page import definition_detail, definition_list
from bpm.dashboard.overview import overview
from bpm.dashboard.saga_actions import saga_action
from bpm.dashboard.saga_list import saga_list
from bpm.dashboard.saga_ownership import saga_ownership
from bpm.dashboard.saga_page import saga_page

app_name = "dashboard"

urlpatterns: list = [
    path("", overview, name="overview"),
    path("sagas/", saga_list, name="sagas"),
    path("sagas/<uuid:saga_id>/", saga_page, name="saga"),
    path("sagas/<uuid:saga_id>/attempts/<int:number>/", attempt_page, name="saga_attempt"),
    path(
        "sagas/<uuid:saga_id>/ownership/<slug:change>/",
        saga_ownership,
        name="saga_ownership",
    ),
    path("sagas/<uuid:saga_id>/<slug:action>/", saga_action, name="saga_action"),
    path("definitions/", definition_list, name="definitions"),
    path("definitions/<slug:name>/", definition_detail, name="definition"),
]
