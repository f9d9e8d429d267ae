"""X-Request-ID: every response carries one, and every line logged while serving it says it.

A proxy or client in front may send its own id, so one id follows the request through every
system; it is hostile input that ends up in logs and in saga rows, so only a bounded run of
safe characters is taken. Anything else (or nothing) gets a fresh id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response

from bpm import log_context

HEADER = "X-Request-ID"
MAX_LENGTH = 128
# Letters, digits and the punctuation of common id formats (UUIDs, base64, trace ids); nothing
# that could split a log line, quote out of it, or hide in a terminal (no spaces or controls).
PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:+=/-]{{0,{MAX_LENGTH - 1}}}")


def request_id_from(value: str | None) -> str:
    """Return `value` when it is an acceptable request id, else a fresh one (uuid4, hex)."""
    if value is not None and PATTERN.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIDMiddleware:
    """Take or make the request's id, log under it, and answer it in the X-Request-ID header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        with log_context.bound(request_id=request_id):
            response = self.get_response(request)
            # Django logs a 4xx or 5xx answer once the middleware is done, out of this block:
            # logged here, the line has the id (and Django, seeing it logged, skips its own).
            if response.status_code >= 400:
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
        response[HEADER] = request_id
        return response
