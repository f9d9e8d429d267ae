"""What the site answers while the database or Redis is unreachable: a 503, never a 500.

The API turns these errors into its JSON error shape (bpm.api.errors); every other page goes
through OutageMiddleware and gets a plain page that says which service is down. Django's
request_started handler then drops the broken connection (CONN_HEALTH_CHECKS replaces a dead
persistent one), so the first request after the outage ends is served normally.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.contrib import admin
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
# Not RedisError as a whole: a ResponseError is a bug to see, not an outage to wait out.
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
# Seconds a client is told to wait; a reconnect is tried on every request, so this is short.
RETRY_AFTER = 5


def unreachable_service(exc: BaseException) -> str | None:
    """Return the service `exc` says is unreachable ("the database", "Redis"), or None."""
    if isinstance(exc, DATABASE_ERRORS):
        return "the database"
    if isinstance(exc, REDIS_ERRORS):
        return "Redis"
    return None


def log_outage(service: str, exc: BaseException, request: HttpRequest) -> None:
    """Log a request refused because `service` is unreachable, with its traceback."""
    # With the traceback: an OperationalError is also what SQLite raises for a missing table.
    log.warning(
        "%s %s answered 503: %s is unreachable (%s)",
        request.method,
        request.path,
        service,
        exc,
        exc_info=exc,
    )


def unavailable_page(service: str) -> HttpResponse:
    """Return the plain 503 page that says `service` is unreachable."""
    # Rendered without the request: its context processors would read the session and the
    # user, which live in the database that may be the service that is down.
    html = render_to_string(
        "503.html",
        {
            "title": "Service unavailable",
            "service": service,
            "retry_after": RETRY_AFTER,
            "site_header": admin.site.site_header,
            "site_title": admin.site.site_title,
        },
    )
    return HttpResponse(html, status=503, headers={"Retry-After": str(RETRY_AFTER)})


class OutageMiddleware:
    """Answer a page whose view found the database or Redis unreachable with a plain 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        service = unreachable_service(exception)
        if service is None:
            return None
        log_outage(service, exception, request)
        return unavailable_page(service)
