"""The production process set's numbers, read from the environment and checked.

Shared by `manage.py serve` and gunicorn's configuration (bpm/gunicorn_conf.py), so one machine
and several read the same variables the same way. Nothing here imports Django's settings:
gunicorn's master reads this module before any Django code loads.
"""

from __future__ import annotations

import os
import re

DEFAULT_PORT = "8000"
DEFAULT_WEB_CONCURRENCY = "2"
DEFAULT_WORKERS = "2"
DEFAULT_STOP_TIMEOUT = "30"
HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]+)$")


class ConfigurationError(ValueError):
    """A variable of the process set has a value that cannot be used; the message names it."""


def positive_int(name: str, default: str) -> int:
    """Return the whole number >= 1 in the variable `name` (or `default`)."""
    value = os.environ.get(name, "").strip() or default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a whole number") from None
    if number < 1:
        raise ConfigurationError(f"{name}={value!r} must be at least 1")
    return number


def web_concurrency() -> int:
    """Return how many gunicorn worker processes serve HTTP (WEB_CONCURRENCY, default 2)."""
    return positive_int("WEB_CONCURRENCY", DEFAULT_WEB_CONCURRENCY)


def rq_workers() -> int:
    """Return how many RQ workers `serve` runs (BPM_WORKERS, default 2)."""
    return positive_int("BPM_WORKERS", DEFAULT_WORKERS)


def stop_timeout() -> int:
    """Return the seconds a stop waits for work in progress before killing (BPM_STOP_TIMEOUT)."""
    return positive_int("BPM_STOP_TIMEOUT", DEFAULT_STOP_TIMEOUT)


def bind() -> str:
    """Return gunicorn's address: BPM_BIND (host:port or unix:/path), else 127.0.0.1:$PORT."""
    value = os.environ.get("BPM_BIND", "").strip()
    if not value:
        port = os.environ.get("PORT", "").strip() or DEFAULT_PORT
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(f"PORT={port!r} is not a port number (1-65535)")
        return f"127.0.0.1:{port}"
    if value.startswith("unix:"):
        if not value.removeprefix("unix:").startswith("/"):
            raise ConfigurationError(f"BPM_BIND={value!r}: a socket needs an absolute path")
        return value
    match = HOST_PORT.match(value)
    if match is None:
        raise ConfigurationError(
            f"BPM_BIND={value!r} is not host:port (e.g. 127.0.0.1:8000, 0.0.0.0:8000, "
            "[::1]:8000) nor unix:/path/to/socket"
        )
    if not 0 < int(match["port"]) < 65536:
        raise ConfigurationError(f"BPM_BIND={value!r}: the port must be 1-65535")
    return value


def graceful_timeout(stop: int) -> int:
    """Return gunicorn's grace for requests in progress: a second less than the stop timeout,
    so its workers are done before the supervisor (or systemd) would kill them."""
    return max(1, stop - 1)
