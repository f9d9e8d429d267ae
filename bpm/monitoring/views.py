"""/healthz, /readyz and /metrics: JSON and Prometheus text for machines, no login."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from bpm.monitoring import access, exposition, readiness

ALLOWED_METHODS = ("GET", "HEAD")
# A probe must see the answer of now, never a cached one.
NO_STORE = {"Cache-Control": "no-store"}


def healthz(request: HttpRequest) -> HttpResponse:
    """Answer 200 while this process serves requests (liveness: no dependency is asked)."""
    check = readiness.Check(True, "this process serves requests", 0.0)
    return JsonResponse({"status": "ok", "checks": {"process": check.as_json()}}, headers=NO_STORE)


def readyz(request: HttpRequest) -> HttpResponse:
    """Answer 200 when every readiness check passes, else 503 with what failed."""
    checks = readiness.run_checks()
    ready = all(check.ok for check in checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: check.as_json() for name, check in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503, headers=NO_STORE)


def metrics(request: HttpRequest) -> HttpResponse:
    """Answer the Prometheus metrics to a loopback scraper or the holder of the token."""
    refused = access.refusal(request)
    if refused is not None:
        status, detail = refused
        headers = {**NO_STORE, **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
        return JsonResponse({"detail": detail}, status=status, headers=headers)
    return HttpResponse(exposition.render(), content_type=CONTENT_TYPE_LATEST, headers=NO_STORE)


def method_not_allowed(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {"detail": f"{request.path} answers GET and HEAD, not {request.method}"},
        status=405,
        headers={"Allow": ", ".join(ALLOWED_METHODS)},
    )
