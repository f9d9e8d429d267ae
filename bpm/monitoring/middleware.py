"""The monitoring endpoints, answered ahead of the site's middleware; request metrics.

A load balancer probes over plain HTTP, often with its own address as the Host: answered by
the site, /healthz would get the HTTPS redirect or a 400 for a host outside ALLOWED_HOSTS, and
the session, CSRF and login machinery would run for nothing. ProbeMiddleware, first in the list,
answers the three paths itself before any of that; what they reveal is guarded by the views
(/metrics: loopback or token) or harmless (which checks pass).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from bpm import metrics
from bpm.monitoring import views

ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}
# The route label of a request no URL pattern matched (a 404, or a redirect before routing).
UNROUTED = "<unrouted>"


class ProbeMiddleware:
    """Answer /healthz, /readyz and /metrics before any other middleware runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = ENDPOINTS.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in views.ALLOWED_METHODS:
            return views.method_not_allowed(request)
        return view(request)


class RequestMetricsMiddleware:
    """Count every other request and its latency by route template (bounded), method, status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        metrics.observe_request(
            # The pattern ("api/v1/sagas/<uuid:pk>/"), never the path: one series per route.
            route="/" + match.route if match is not None else UNROUTED,
            method=str(request.method),
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response
