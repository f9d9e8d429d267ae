"""The Django admin for sagas: instances with operator actions, and definition versions."""

from bpm.admin import batch_repairs, sagas, versions
from bpm.queue_pages import register_in_admin

# django_rq's admin module registered its own entry already (it comes first in INSTALLED_APPS).
register_in_admin()

__all__ = ["batch_repairs", "sagas", "versions"]
