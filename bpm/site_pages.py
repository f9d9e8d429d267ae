"""Pages of the site itself rather than of an app: the icon browsers ask for at /favicon.ico."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """Redirect to the icon among the static files (pages also name it with <link rel=icon>)."""
    return HttpResponseRedirect(static("bpm/favicon.ico"))
