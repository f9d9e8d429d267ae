"""Where Redis is: one URL, or a master found through Redis Sentinel. Every client is made here.

The settings read the environment once (`params_from_environment`) into django-rq's connection
parameters, `settings.REDIS_CONNECTION`; every queue in RQ_QUEUES gets them, so the rqworkers,
the doorbells, the sweeper and the queue pages all follow the same master. Code that needs a
client of its own (the API's rate limit, the dashboard's short timeouts) calls `client()`.

Under Sentinel a client never holds a master's address: its pool asks the sentinels where the
master is every time it opens a connection, and redis-py drops a connection that fails (or that
answers READONLY, when it reaches a demoted master), so the next command, or redis-py's own
retry, lands on the promoted master once the sentinels have agreed on one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis
from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import Sentinel, SentinelManagedConnection

if TYPE_CHECKING:
    from rq.queue import Queue

URL_SCHEMES = ("redis://", "rediss://", "unix://")
# Asking a sentinel must be quick: a sentinel that does not answer is skipped for the next one.
SENTINEL_TIMEOUT = 1.0
# Opening a connection to the master: a host that vanished must not hold a process for minutes.
CONNECT_TIMEOUT = 5.0
SENTINEL_ONLY = ("REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD", "REDIS_PASSWORD", "REDIS_DB")


class MasterConnection(SentinelManagedConnection):
    """A connection to the Sentinel-managed master that is dropped when reading a reply fails.

    redis-py's SentinelManagedConnection keeps the connection when an exception (RQ's
    StopRequested, raised by the SIGTERM handler while the worker blocks in BLMOVE) interrupts a
    read, so the next command on it reads the interrupted command's reply, and RQ's last
    pipeline fails with "Wrong number of response items". A plain Connection drops it.
    """

    def read_response(
        self, *args: Any, disconnect_on_error: bool | None = True, **kwargs: Any
    ) -> Any:
        return super().read_response(*args, disconnect_on_error=disconnect_on_error, **kwargs)


def params_from_environment(environ: Mapping[str, str], *, default_url: str) -> dict[str, Any]:
    """Return django-rq's connection parameters for REDIS_URL or REDIS_SENTINELS.

    REDIS_URL and REDIS_SENTINELS exclude each other; with neither, `default_url` (the embedded
    Redis). Raise ImproperlyConfigured, naming the variable, for anything malformed.
    """
    url = environ.get("REDIS_URL", "").strip()
    sentinels = environ.get("REDIS_SENTINELS", "").strip()
    if url and sentinels:
        raise ImproperlyConfigured(
            "REDIS_URL and REDIS_SENTINELS are both set: set REDIS_URL for one Redis, or "
            "REDIS_SENTINELS (with REDIS_SENTINEL_MASTER) for a master found through Sentinel"
        )
    if sentinels:
        return _sentinel_params(environ, sentinels)
    stray = [name for name in SENTINEL_ONLY if environ.get(name, "").strip()]
    if stray:
        raise ImproperlyConfigured(
            f"{', '.join(stray)} only apply with REDIS_SENTINELS; without Sentinel, put the "
            "password and the database number in REDIS_URL (redis://:password@host:port/db)"
        )
    url = url or default_url
    if not url.startswith(URL_SCHEMES):
        raise ImproperlyConfigured(
            f"REDIS_URL={url!r} must start with redis://, rediss:// or unix://"
        )
    return {"URL": url}


def _sentinel_params(environ: Mapping[str, str], sentinels: str) -> dict[str, Any]:
    master = environ.get("REDIS_SENTINEL_MASTER", "").strip()
    if not master:
        raise ImproperlyConfigured(
            "REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is not: name the master the "
            "sentinels monitor (the name in `sentinel monitor <name> ...`)"
        )
    db_text = environ.get("REDIS_DB", "0").strip() or "0"
    if not db_text.isdigit():
        raise ImproperlyConfigured(f"REDIS_DB={db_text!r} must be a database number (0, 1, ...)")
    sentinel_password = environ.get("REDIS_SENTINEL_PASSWORD") or None
    return {
        "SENTINELS": sentinel_addresses(sentinels),
        "MASTER_NAME": master,
        "DB": int(db_text),
        "PASSWORD": environ.get("REDIS_PASSWORD") or None,
        "SOCKET_TIMEOUT": None,
        "CONNECTION_KWARGS": {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "connection_class": MasterConnection,
        },
        "SENTINEL_KWARGS": {
            "password": sentinel_password,
            "socket_timeout": SENTINEL_TIMEOUT,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
        },
    }


def sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """Parse REDIS_SENTINELS ("host:port,host:port", IPv6 as "[::1]:26379") into addresses."""
    addresses = []
    for entry in (item.strip() for item in value.split(",")):
        host, _, port = entry.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not entry or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS={value!r}: {entry!r} is not host:port (a port from 1 to 65535);"
                " separate the sentinels with commas"
            )
        addresses.append((host, int(port)))
    if len(set(addresses)) != len(addresses):
        raise ImproperlyConfigured(f"REDIS_SENTINELS={value!r} names a sentinel twice")
    return addresses


def client(params: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> redis.Redis:
    """Return a new client on `params` (default: settings.REDIS_CONNECTION).

    `timeout`, when given, bounds connecting and every command, for callers that would rather
    fail fast than wait for an unreachable Redis. `params` may be a queue's RQ_QUEUES entry.
    """
    if params is None:
        from django.conf import settings

        params = settings.REDIS_CONNECTION
    limits = (
        {} if timeout is None else {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    )
    if "SENTINELS" in params:
        sentinel = Sentinel(
            params["SENTINELS"],
            sentinel_kwargs=params.get("SENTINEL_KWARGS", {}),
            db=params.get("DB", 0),
            password=params.get("PASSWORD"),
            **{**params.get("CONNECTION_KWARGS", {}), **limits},
        )
        return sentinel.master_for(params["MASTER_NAME"])
    if "URL" in params:
        return redis.Redis.from_url(params["URL"], **limits)
    raise ImproperlyConfigured(f"a Redis connection needs URL or SENTINELS, not {sorted(params)}")


_shared: dict[str, redis.Redis] = {}
_shared_lock = threading.Lock()


def shared_client(params: Mapping[str, Any]) -> redis.Redis:
    """Return this process's client on `params`, made at the first call and kept.

    django_rq.get_queue builds a new pool at every call: a new TCP connection, and under
    Sentinel a question to a sentinel, for every doorbell. One pool per process instead; redis-py
    notices a fork and gives the child a fresh pool.
    """
    key = repr(sorted(params.items()))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = client(params)
        return _shared[key]


def queue(name: str) -> Queue:
    """Return the RQ queue `name` of RQ_QUEUES on this process's shared client."""
    import django_rq
    from django.conf import settings

    return django_rq.get_queue(name, connection=shared_client(settings.RQ_QUEUES[name]))


def describe(params: Mapping[str, Any] | None = None) -> str:
    """Return where Redis is, without its password, for banners and logs."""
    if params is None:
        from django.conf import settings

        params = settings.REDIS_CONNECTION
    if "SENTINELS" in params:
        addresses = ",".join(f"{host}:{port}" for host, port in params["SENTINELS"])
        return f"master {params['MASTER_NAME']!r} (db {params['DB']}) through Sentinel {addresses}"
    parts = urlsplit(str(params["URL"]))
    if parts.password is None:
        return parts.geturl()
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
