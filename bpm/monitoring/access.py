"""Who may read /metrics: loopback scrapers, or whoever holds BPM_METRICS_TOKEN."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest

from bpm.client_address import client_address

# Headers only a proxy sets: a request carrying one came through a proxy, so its loopback
# REMOTE_ADDR is the proxy's, not the scraper's.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def refusal(request: HttpRequest) -> tuple[int, str] | None:
    """Return (status, why) when this request may not read /metrics, else None."""
    token = settings.BPM_METRICS_TOKEN
    if token:
        return _token_refusal(request, token)
    if not is_loopback(client_address(request)):
        return 403, (
            "/metrics answers only to this machine's loopback addresses; "
            "set BPM_METRICS_TOKEN to scrape it from elsewhere"
        )
    if not settings.BPM_TRUSTED_PROXIES and any(h in request.META for h in FORWARDING_HEADERS):
        return 403, (
            "/metrics was reached through a proxy, so the client's address is unknown; "
            "set BPM_TRUSTED_PROXIES, or BPM_METRICS_TOKEN"
        )
    return None


def _token_refusal(request: HttpRequest, token: str) -> tuple[int, str] | None:
    scheme, _, given = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return 401, "/metrics needs the header `Authorization: Bearer <BPM_METRICS_TOKEN>`"
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return 403, "the bearer token is not BPM_METRICS_TOKEN"
    return None


def is_loopback(address: str) -> bool:
    """Say whether `address` is a loopback address (IPv4, IPv6, or IPv4 mapped into IPv6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback
