"""The dashboard's URLs, mounted under /admin/dashboard/ (namespace "dashboard")."""

from django.urls import path, re_path

from bpm.dashboard.alerts_page import alert_delete, alert_detail, alert_list, alert_rotate
from bpm.dashboard.attempts import attempt_page
from bpm.dashboard.batch_pages import batch_cancel, batch_list, batch_new, batch_page
from bpm.dashboard.definition_pause import definition_pause
from bpm.dashboard.definitions_page import definition_detail, definition_list
from bpm.dashboard.overview import overview
from bpm.dashboard.saga_actions import saga_action
from bpm.dashboard.saga_list import saga_list
from bpm.dashboard.saga_ownership import saga_ownership
from bpm.dashboard.saga_page import saga_page
from bpm.dashboard.task_inbox import task_list, task_page
from bpm.dashboard.views_page import saved_view_delete, saved_view_list

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
    path("batches/", batch_list, name="batches"),
    path("batches/new/", batch_new, name="batch_new"),
    path("batches/<int:batch_id>/", batch_page, name="batch"),
    path("batches/<int:batch_id>/cancel/", batch_cancel, name="batch_cancel"),
    path("definitions/", definition_list, name="definitions"),
    path("definitions/<slug:name>/", definition_detail, name="definition"),
    # Only these two actions: other paths under a definition stay free for other pages.
    re_path(
        r"^definitions/(?P<name>[-a-zA-Z0-9_]+)/(?P<action>pause|resume)/$",
        definition_pause,
        name="definition_pause",
    ),
    path("views/", saved_view_list, name="saved_views"),
    path("views/<int:view_id>/delete/", saved_view_delete, name="saved_view_delete"),
    path("alerts/", alert_list, name="alerts"),
    path("alerts/<int:rule_id>/", alert_detail, name="alert"),
    path("alerts/<int:rule_id>/delete/", alert_delete, name="alert_delete"),
    path("alerts/<int:rule_id>/rotate/", alert_rotate, name="alert_rotate"),
    path("tasks/", task_list, name="tasks"),
    path("tasks/<int:task_id>/", task_page, name="task"),
]
