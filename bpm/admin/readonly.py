"""Admin pages for rows that only services and the engine write: shown, never edited here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyMixin:
    """Nobody adds, changes or deletes these rows in the admin, not even a superuser."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """A model whose rows are looked at here and changed only by its services."""


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    """Related rows shown in order under their parent, with no blank row to add one."""

    extra = 0
    max_num = 0
    can_delete = False
