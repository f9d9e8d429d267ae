"""The dashboard's URLs, mounted under /admin/dashboard/ (namespace "dashboard")."""

from django.urls import path

app_name = "dashboard"

urlpatterns: list = []
