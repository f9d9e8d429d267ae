"""The Django admin for sagas: instances with operator actions, and definition versions."""

from bpm.admin import sagas, versions

__all__ = ["sagas", "versions"]
