"""The dashboard's URLs, mounted under /admin/dashboard/ (namespace "dashboard")."""

app_name = "dashboard"

urlpatterns: list = []
