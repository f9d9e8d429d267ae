"""How dashboard views join the admin site: its login, its permissions and its page context."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

VIEW_PERMISSION = "bpm.view_sagainstance"

View = Callable[..., HttpResponse]


def dashboard_view(view: View) -> View:
    """Wrap a view so it needs an admin login and the permission to view sagas.

    Anonymous visitors are sent to the admin's login page; a staff user without the permission
    gets 403.
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied("you may not view sagas")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(guarded)


def page_context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    """Return the admin site's context (nav sidebar, theme toggle, user links) plus `extra`."""
    return {**admin.site.each_context(request), "title": title, **extra}
