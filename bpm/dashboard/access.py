"""How dashboard views join the admin site: its login, its permissions and its page context."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

VIEW_PERMISSION = "bpm.view_sagainstance"

View = Callable[..., HttpResponse]


def dashboard_view(view: View) -> View:
    """Wrap a view so it needs an admin login and the permission to view sagas.

    Anonymous visitors are sent to the admin's login page; a staff user without the permission
    gets 403. An htmx request whose session has ended (a page left polling overnight) gets the
    whole browser sent to the login page, not the login form swapped into a fragment.
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied("you may not view sagas")
        return view(request, *args, **kwargs)

    in_admin = admin.site.admin_view(guarded)

    @wraps(view)
    def entry(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        htmx = getattr(request, "htmx", None)
        if htmx and not admin.site.has_permission(request):
            page = htmx.current_url_abs_path or request.get_full_path()
            return HttpResponseClientRedirect(
                f"{reverse('admin:login')}?{urlencode({'next': page})}"
            )
        return in_admin(request, *args, **kwargs)

    return entry


def page_context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    """Return the admin site's context (nav sidebar, theme toggle, user links) plus `extra`."""
    return {**admin.site.each_context(request), "title": title, **extra}


def refused(request: HttpRequest, reason: str, *, back: str) -> HttpResponse:
    """Return a 403 page in the dashboard that says why (and links `back`), not a bare 403."""
    context = page_context(request, "Not allowed", reason=reason, back=back)
    return render(request, "dashboard/refused.html", context, status=403)
