"""The API's URLs, mounted at /api/ by bpm/urls.py.

The apps that use the engine add their own endpoints under /api/v1/, in this "api" namespace: the
URL modules named by the BPM_API_URLCONFS setting are included as dotted strings, never imported
here, so the engine knows no participant.
"""

from __future__ import annotations

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from bpm.api.redoc_bundle import redoc_bundle
from bpm.api.views import batches, definitions, sagas, waits
from bpm.api.views.base import not_found

app_name = "api"

v1: list[URLPattern | URLResolver] = [
    *(path("", include(urlconf)) for urlconf in getattr(settings, "BPM_API_URLCONFS", ())),
    path("sagas/", sagas.SagaList.as_view(), name="sagas"),
    path("sagas/<str:saga_id>/", sagas.SagaDetail.as_view(), name="saga"),
    path("sagas/<str:saga_id>/events/", sagas.SagaEvents.as_view(), name="saga-events"),
    path("sagas/<str:saga_id>/retry/", sagas.SagaRetry.as_view(), name="saga-retry"),
    path("sagas/<str:saga_id>/skip/", sagas.SagaSkip.as_view(), name="saga-skip"),
    path("sagas/<str:saga_id>/compensate/", sagas.SagaCompensate.as_view(), name="saga-compensate"),
    path("sagas/<str:saga_id>/abort/", sagas.SagaAbort.as_view(), name="saga-abort"),
    path(
        "sagas/<str:saga_id>/signals/<str:name>/",
        waits.SagaSignal.as_view(),
        name="saga-signal",
    ),
    path("tasks/", waits.TaskList.as_view(), name="tasks"),
    path("tasks/<int:task_id>/", waits.TaskDetail.as_view(), name="task"),
    path("tasks/<int:task_id>/claim/", waits.TaskClaim.as_view(), name="task-claim"),
    path("tasks/<int:task_id>/unclaim/", waits.TaskUnclaim.as_view(), name="task-unclaim"),
    path("tasks/<int:task_id>/complete/", waits.TaskComplete.as_view(), name="task-complete"),
    path("tasks/<int:task_id>/reject/", waits.TaskReject.as_view(), name="task-reject"),
    path("tasks/<str:token>/succeed/", waits.TokenSucceed.as_view(), name="token-succeed"),
    path("tasks/<str:token>/fail/", waits.TokenFail.as_view(), name="token-fail"),
    path("batches/", batches.BatchList.as_view(), name="batches"),
    path("batches/<str:batch_id>/", batches.BatchDetail.as_view(), name="batch"),
    path("batches/<str:batch_id>/cancel/", batches.BatchCancel.as_view(), name="batch-cancel"),
    path("sagas/<str:saga_id>/rerun/", sagas.SagaRerun.as_view(), name="saga-rerun"),
    path("sagas/<str:saga_id>/pause/", sagas.SagaPause.as_view(), name="saga-pause"),
    path("sagas/<str:saga_id>/resume/", sagas.SagaResume.as_view(), name="saga-resume"),
    path("sagas/<str:saga_id>/assign/", sagas.SagaAssign.as_view(), name="saga-assign"),
    path(
        "sagas/<str:saga_id>/acknowledge/",
        sagas.SagaAcknowledge.as_view(),
        name="saga-acknowledge",
    ),
    path("sagas/<str:saga_id>/comments/", sagas.SagaComments.as_view(), name="saga-comments"),
    path(
        "definitions/<str:name>/pause/",
        sagas.DefinitionPause.as_view(),
        name="definition-pause",
    ),
    path(
        "definitions/<str:name>/resume/",
        sagas.DefinitionResume.as_view(),
        name="definition-resume",
    ),
    path("definitions/", definitions.DefinitionCompose.as_view(), name="definitions"),
    path("definitions/<str:name>/", definitions.DefinitionDetail.as_view(), name="definition"),
    path(
        "definitions/<str:name>/versions/",
        definitions.DefinitionVersions.as_view(),
        name="definition-versions",
    ),
    path(
        "definitions/<str:name>/versions/<str:version>/",
        definitions.DefinitionVersionDetail.as_view(),
        name="definition-version",
    ),
    path(
        "definitions/<str:name>/versions/<str:version>/approve/",
        definitions.DefinitionApprove.as_view(),
        name="definition-approve",
    ),
    path(
        "definitions/<str:name>/versions/<str:version>/reject/",
        definitions.DefinitionReject.as_view(),
        name="definition-reject",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("v1/", include(v1)),
    # The split view serves Swagger UI's script from its own URL: no inline script for the CSP.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    # ReDoc's bundle injects two <style> elements as it loads, before it can be handed the nonce:
    # this page alone allows inline styles (still no inline script).
    path(
        "redoc/",
        csp_replace({"style-src": [SELF, UNSAFE_INLINE]})(
            SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html")
        ),
        name="redoc",
    ),
    path("redoc/redoc.standalone.js", redoc_bundle, name="redoc-bundle"),
    # Anything else under /api/ is a JSON 404, like every other error here.
    re_path(r"^.*$", not_found, name="not-found"),
]
