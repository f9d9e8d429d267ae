"""Request rates per anonymous address and per user, counted in Redis across all web processes.

Each request is one Lua script run in Redis (a sliding window kept as a sorted set of request
times): counting, refusing and recording happen in one atomic step, so a limit holds exactly
however many requests arrive at once. DRF's own throttles read the history, change it in Python
and write it back, and concurrent requests overwrite each other's entries.

The limits are read from settings on every request (BPM_API_ANON_PER_MINUTE,
BPM_API_USER_PER_MINUTE; 0 turns one off), not frozen when the module loads. When Redis cannot
be reached the request is let through and a warning is logged: the API stays up without it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from bpm import redis_connection

logger = logging.getLogger("bpm.api.throttling")

KEY_PREFIX = "bpm-api:rate:"
# Short: a throttle that waits for an unreachable Redis holds every request up.
REDIS_TIMEOUT = 0.5

# KEYS[1]: the window; ARGV: window length (ms), limit, a unique member for this request.
# Returns {1, 0} when the request is counted, else {0, ms until the oldest one leaves the window}.
SLIDING_WINDOW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
    return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now_ms}
"""

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _client() -> redis.Redis:
    # One client (and its pool) per configuration; the key follows settings overridden in tests.
    params = settings.REDIS_CONNECTION
    key = repr(sorted(params.items()))
    with _clients_lock:
        if key not in _clients:
            _clients[key] = redis_connection.client(params, timeout=REDIS_TIMEOUT)
        return _clients[key]


def window_hit(key: str, *, limit: int, seconds: int) -> tuple[bool, float]:
    """Count one request under `key`; return (allowed, seconds to wait when refused).

    Fails open: with Redis unreachable the request is allowed and a warning logged.
    """
    client = _client()
    try:
        allowed, wait_ms = client.eval(
            SLIDING_WINDOW, 1, KEY_PREFIX + key, seconds * 1000, limit, uuid.uuid4().hex
        )
    except (redis.RedisError, OSError) as exc:
        logger.warning("Rate limit %r not applied: Redis is unreachable (%s)", key, exc)
        return True, 0.0
    return bool(allowed), max(int(wait_ms), 0) / 1000


def window_count(key: str, *, seconds: int) -> int:
    """Return how many requests `key` has in its current window (0 when Redis is unreachable)."""
    client = _client()
    full_key = KEY_PREFIX + key
    try:
        time, micros = client.time()
        now_ms = time * 1000 + micros // 1000
        return int(client.zcount(full_key, now_ms - seconds * 1000 + 1, "+inf"))
    except (redis.RedisError, OSError) as exc:
        logger.warning("Rate limit %r not read: Redis is unreachable (%s)", key, exc)
        return 0


class SettingRate:
    """Take the rate from the setting named by `setting`, in requests per minute; count in Redis."""

    setting = ""
    rate: str | None
    num_requests: int | None
    duration: int | None

    def get_rate(self) -> str | None:
        per_minute = getattr(settings, self.setting)
        return f"{per_minute}/min" if per_minute else None

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None or not self.num_requests or not self.duration:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if key is None:
            return True
        allowed, self.retry_after = window_hit(key, limit=self.num_requests, seconds=self.duration)
        return allowed

    def wait(self) -> float:
        return max(getattr(self, "retry_after", 0.0), 1.0)


class AnonymousThrottle(SettingRate, AnonRateThrottle):
    setting = "BPM_API_ANON_PER_MINUTE"


class UserThrottle(SettingRate, UserRateThrottle):
    setting = "BPM_API_USER_PER_MINUTE"
