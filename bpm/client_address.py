"""The address a request comes from, trusting X-Forwarded-For only as far as our own proxies."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """Return REMOTE_ADDR, or behind BPM_TRUSTED_PROXIES proxies the address they were sent from.

    Each trusted proxy appends the address it received the request from to X-Forwarded-For, so
    the entry that many places from the end is the last one a client could not have written.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.BPM_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote
    hops = [hop.strip() for hop in str(forwarded).split(",") if hop.strip()]
    return hops[-min(proxies, len(hops))] if hops else remote
