"""The site's URLs."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:overview", permanent=False)),
    # Before admin/, whose catch-all would otherwise take /admin/dashboard/ for an app label.
    path("admin/dashboard/", include("bpm.dashboard.urls")),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
    path("api/", include("bpm.api.urls")),
]
