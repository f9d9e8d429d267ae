"""Calls to URLs that operators typed: only to hosts the site allows, never anywhere else.

An operator's URL is hostile input. BPM_HTTP_ALLOWED_HOSTS names the hosts that may be called;
anything else is refused, as are schemes other than http and https, credentials in the URL, and
(unless the address itself is listed) any host that resolves to a link-local address, where
cloud metadata services live. Redirects are never followed: a listed host cannot send the
request on to one that is not. `check_url` runs when a URL is saved and again before each call.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx
from django.conf import settings

SCHEMES = ("http", "https")
# Metadata services that are not link-local (AWS's IPv6 one, Alibaba's).
METADATA = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


class UrlRefused(ValueError):
    """The URL may not be called; the message says why."""


def allowed_hosts() -> set[str]:
    """Return the host names and addresses that may be called, lower case."""
    return {host.lower().strip("[]") for host in settings.BPM_HTTP_ALLOWED_HOSTS}


def check_url(url: str) -> None:
    """Raise UrlRefused unless `url` is an http(s) URL to an allowed, non-link-local host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UrlRefused(f"not a valid URL: {error}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise UrlRefused(f"only http:// and https:// URLs may be called, not {parts.scheme!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlRefused("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not accepted; sign the request instead")
    allowed = allowed_hosts()
    if host not in allowed:
        listed = ", ".join(sorted(allowed)) or "none (BPM_HTTP_ALLOWED_HOSTS is empty)"
        raise UrlRefused(f"{host} is not an allowed host; allowed: {listed}")
    for address in _addresses(host, port or (443 if parts.scheme.lower() == "https" else 80)):
        if (address.is_link_local or address in METADATA) and str(address) not in allowed:
            raise UrlRefused(
                f"{host} resolves to {address}, a link-local or metadata address, which is not "
                "listed in BPM_HTTP_ALLOWED_HOSTS"
            )


def _addresses(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return {ipaddress.ip_address(host)}
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        # Nothing to connect to now, so nothing to refuse: the call fails on its own, and is
        # checked again (resolved again) before every send.
        return set()
    found = set()
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        found.add(address)
    return found


def post_json(
    url: str, *, body: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST `body` (JSON) to `url` once it passes check_url; redirects are not followed."""
    check_url(url)
    return httpx.post(
        url,
        content=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=timeout,
        follow_redirects=False,
    )
