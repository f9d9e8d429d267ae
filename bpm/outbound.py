"""The policy every outbound HTTP call obeys, and the client that enforces it.

Only hosts named in BPM_HTTP_ALLOWED_HOSTS are called, over http or https, without credentials in
the URL, without proxies from the environment and without following redirects. The host's
addresses are checked where the connection is made, not only when the URL is read: a name is
resolved once, each address must be public (or its address or network listed), and the socket
connects to the address that passed, so a DNS answer that changes between the check and the
connection (rebinding) cannot reach a loopback, private, link-local or metadata address. A
response body is read up to BPM_HTTP_MAX_RESPONSE_BYTES and no further.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = {"http": 80, "https": 443}
# A URL is text a definition or a setting wrote: no whitespace nor control characters.
UNPRINTABLE = re.compile(r"[\x00-\x20\x7f-\x9f]")


class UrlRefused(Exception):
    """The outbound policy forbids this URL or the address its host resolves to."""


class ResponseTooLarge(Exception):
    """The response body is larger than BPM_HTTP_MAX_RESPONSE_BYTES."""


@dataclass(frozen=True)
class AllowedEntry:
    """One entry of BPM_HTTP_ALLOWED_HOSTS: a host name, or an address or network; any port
    unless one is given."""

    name: str | None
    network: Network | None
    port: int | None

    def allows_port(self, port: int) -> bool:
        return self.port is None or self.port == port


def allowed_entries(values: Iterable[str] | None = None) -> list[AllowedEntry]:
    """Return BPM_HTTP_ALLOWED_HOSTS (or `values`) parsed; ValueError names a malformed entry."""
    raw = settings.BPM_HTTP_ALLOWED_HOSTS if values is None else values
    return [_parse_entry(value.strip()) for value in raw if value.strip()]


def _parse_entry(value: str) -> AllowedEntry:
    host, port = value, None
    if "/" in value:
        return AllowedEntry(None, _network(value, value), None)
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed:
            raise ValueError(f"BPM_HTTP_ALLOWED_HOSTS: {value!r} has no closing ]")
        port = _port(rest.removeprefix(":"), value) if rest else None
    elif value.count(":") == 1:
        host, _, text = value.partition(":")
        port = _port(text, value)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return AllowedEntry(_host_name(host, value), None, port)
    return AllowedEntry(None, ipaddress.ip_network(address), port)


def _network(text: str, entry: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"BPM_HTTP_ALLOWED_HOSTS: {entry!r} is not a network") from None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"BPM_HTTP_ALLOWED_HOSTS: {entry!r} has no valid port")
    return int(text)


def _host_name(host: str, entry: str) -> str:
    try:
        name = host.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        raise ValueError(f"BPM_HTTP_ALLOWED_HOSTS: {entry!r} is not a host name") from None
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", name):
        raise ValueError(f"BPM_HTTP_ALLOWED_HOSTS: {entry!r} is not a host name")
    return name


def check_url(url: str) -> None:
    """Raise UrlRefused unless the policy allows calling `url` (before any address is known)."""
    parsed = parse_url(url)
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    check_host(host, parsed.port or SCHEMES[parsed.scheme])


def parse_url(url: str) -> httpx.URL:
    """Return `url` parsed as the client will send it, or raise UrlRefused saying why not."""
    if not isinstance(url, str) or UNPRINTABLE.search(url):
        raise UrlRefused("a URL may not hold whitespace or control characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UrlRefused(f"{_shown(url)} is not a valid URL: {exc}") from None
    if parsed.scheme not in SCHEMES:
        scheme = parsed.scheme or "none"
        raise UrlRefused(f"{_shown(url)}: the scheme {scheme!r} is refused (only http and https)")
    if parsed.userinfo:
        raise UrlRefused(
            f"{_shown(url)}: credentials in a URL are refused; name a secret in a header instead"
        )
    if not parsed.raw_host:
        raise UrlRefused(f"{_shown(url)} names no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UrlRefused(f"{_shown(url)} is not a valid URL: port {parsed.port} is out of range")
    return parsed


def check_host(host: str, port: int) -> None:
    """Raise UrlRefused unless `host:port` (a name or an address literal) is allowed."""
    entries = allowed_entries()
    address = _address(host)
    if address is not None:
        if not any(_listed_address(entry, address, port) for entry in entries):
            raise UrlRefused(
                f"the address {address} is not listed in BPM_HTTP_ALLOWED_HOSTS"
                + ("" if port in SCHEMES.values() else f" for port {port}")
            )
        return
    if not any(entry.name == host and entry.allows_port(port) for entry in entries):
        listed = ", ".join(sorted({entry.name for entry in entries if entry.name})) or "none"
        raise UrlRefused(
            f"the host {host!r} (port {port}) is not listed in BPM_HTTP_ALLOWED_HOSTS"
            f" (listed names: {listed})"
        )


def check_address(address: str, port: int) -> None:
    """Raise UrlRefused unless a connection to this resolved address may be made.

    A public address is fine for a host the list allows; any other (loopback, private,
    link-local such as the 169.254.169.254 metadata service, reserved, multicast) only when the
    list names the address or its network.
    """
    ip = _address(address)
    if ip is None:
        raise UrlRefused(f"{address!r} is not an IP address")
    if ip.is_global and not ip.is_multicast:
        return
    if not any(_listed_address(entry, ip, port) for entry in allowed_entries()):
        raise UrlRefused(
            f"the address {ip} is not public (loopback, private, link-local or reserved) and"
            " not listed in BPM_HTTP_ALLOWED_HOSTS"
        )


def _address(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _listed_address(entry: AllowedEntry, address: Address, port: int) -> bool:
    return entry.network is not None and address in entry.network and entry.allows_port(port)


def resolve(host: str, port: int) -> list[str]:
    """Return the addresses `host` resolves to, in the resolver's order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses the policy allows, checked at the moment of connecting."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        check_host(host.lower().rstrip("."), port)
        try:
            addresses = [host] if _address(host) is not None else resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        refusals = []
        for address in addresses:
            try:
                check_address(address, port)
            except UrlRefused as exc:
                refusals.append(str(exc))
                continue
            return super().connect_tcp(
                address.strip("[]"), port, timeout, local_address, socket_options
            )
        raise UrlRefused(f"{host} resolves to no address that may be called: {'; '.join(refusals)}")


def client(timeout: float) -> httpx.Client:
    """Return a client bound by the policy: guarded connections, no redirects, no proxies."""
    transport = httpx.HTTPTransport(trust_env=False, retries=0)
    # httpx has no argument for the network backend: the pool it made is replaced by the same
    # pool connecting through GuardedBackend (httpx is pinned below 0.29 for this).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=GuardedBackend(),
        max_connections=4,
        retries=0,
    )
    return httpx.Client(
        transport=transport, follow_redirects=False, trust_env=False, timeout=timeout
    )


def request(
    method: str,
    url: str,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
) -> httpx.Response:
    """Make one call under the policy and return its response, whose body is already read.

    Raises UrlRefused, ResponseTooLarge, or httpx's errors for timeouts and connection faults.
    A redirect is returned as it came, never followed.
    """
    check_url(url)
    limit = settings.BPM_HTTP_MAX_RESPONSE_BYTES
    with (
        client(timeout) as session,
        session.stream(method, url, content=content, headers=headers) as streamed,
    ):
        body = bytearray()
        for chunk in streamed.iter_bytes():
            body.extend(chunk)
            if len(body) > limit:
                raise ResponseTooLarge(
                    f"{method} {_shown(url)} answered more than {limit} bytes"
                    " (BPM_HTTP_MAX_RESPONSE_BYTES)"
                )
        headers_out = [
            (name, value)
            for name, value in streamed.headers.multi_items()
            # The body is kept decoded: its encoding and length no longer describe it.
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            streamed.status_code,
            headers=headers_out,
            content=bytes(body),
            request=streamed.request,
        )


def post_json(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
    """POST a JSON body under the policy and return the response (see `request`)."""
    return request(
        "POST",
        url,
        content=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=timeout,
    )


def _shown(url: Any) -> str:
    text = str(url)
    return repr(text if len(text) <= 200 else text[:200] + "…")
