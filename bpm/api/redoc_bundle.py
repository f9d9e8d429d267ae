"""ReDoc's script without the one thing it fetches from the internet.

The bundle drf-spectacular-sidecar ships draws its "API docs by Redocly" footer with a logo from
cdn.redoc.ly, and has no option to leave it out. Nothing on this site may come from another host
(the Content-Security-Policy would block it anyway, leaving a broken image and a console error),
so the bundle is served with that address emptied: the image then fails at once, without a
request, and ReDoc hides it.
"""

from __future__ import annotations

import functools
import hashlib

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_safe

BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
EXTERNAL_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def bundle() -> tuple[bytes, str]:
    """Return the bundle without its external logo, and its ETag (read once per process)."""
    path = finders.find(BUNDLE)
    if not path or isinstance(path, list):
        raise FileNotFoundError(f"{BUNDLE} is not among the static files")
    with open(path, "rb") as file:
        script = file.read().replace(EXTERNAL_LOGO, b"")
    return script, f'"{hashlib.sha256(script).hexdigest()[:32]}"'


@require_safe
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    """Serve ReDoc's standalone script, cached by the browser for a day."""
    script, etag = bundle()
    if request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified(headers={"ETag": etag})
    response = HttpResponse(script, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = "public, max-age=86400"
    return response
