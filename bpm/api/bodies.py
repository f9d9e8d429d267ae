"""Request bodies the API will not read, refused in its JSON error shape before anything reads them.

A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 (Django would answer its own HTML 400 page). A
chunked body (Transfer-Encoding without Content-Length) is a 411: Django and DRF read a body by its
Content-Length, so without one they would see an empty body and act on it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from bpm.api.errors import error_body

API_PREFIX = "/api/"


class BodyLimitMiddleware:
    """Answer 413 or 411 for API requests whose body is too large or has no length."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            refusal = refuse_body(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)


def refuse_body(request: HttpRequest) -> HttpResponse | None:
    """Return the error response for a body the API will not read, or None."""
    length = request.META.get("CONTENT_LENGTH", "")
    if "HTTP_TRANSFER_ENCODING" in request.META and not length:
        return JsonResponse(
            error_body(
                "length_required",
                "Send the body with a Content-Length header; chunked bodies are not accepted",
            ),
            status=411,
        )
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length.isdigit() and int(length) > limit:
        return JsonResponse(
            error_body("too_large", f"The body is {length} bytes, over the limit of {limit}"),
            status=413,
        )
    return None
