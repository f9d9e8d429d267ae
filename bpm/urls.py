"""The site's URLs."""

import django_rq.urls
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from bpm import site_pages
from bpm.queue_pages import guard

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:overview", permanent=False)),
    # Before admin/, whose catch-all would otherwise take /admin/dashboard/ for an app label.
    path("admin/dashboard/", include("bpm.dashboard.urls")),
    path("admin/", admin.site.urls),
    # RQ's own pages, each guarded: only superusers and queue managers (bpm.manage_queues).
    path("django-rq/", include((guard(django_rq.urls.urlpatterns), "django_rq"))),
    path("api/", include("bpm.api.urls")),
    path("favicon.ico", site_pages.favicon, name="favicon"),
]
