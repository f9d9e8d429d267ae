"""The Django admin for sagas: instances with operator actions, and definition versions."""

from django.contrib import admin

from bpm.admin import batch_repairs, sagas, versions
from bpm.queue_pages import register_in_admin

# django_rq's admin module registered its own entry already (it comes first in INSTALLED_APPS).
register_in_admin()

# The product's name on every page instead of "Django administration"; the user links name the
# dashboard instead of a "View site" link (templates/admin/base_site.html).
admin.site.site_header = "bpm — saga orchestrator"
admin.site.site_title = "bpm"
admin.site.index_title = "Administration"
admin.site.site_url = None

__all__ = ["batch_repairs", "sagas", "versions"]
