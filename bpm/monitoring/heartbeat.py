"""The sweeper's heartbeat in Redis: when it last swept and what its sweeps did, in total.

In Redis rather than in the sweeper's own memory so that every web process on every machine
reads the same answer: /readyz asks whether it is fresh, /metrics exports it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from bpm import clock

log = logging.getLogger(__name__)

KEY = "bpm:sweeper"


@dataclass(frozen=True)
class Heartbeat:
    last_run: float | None
    leases_expired: int
    redrives: int


def beat(connection: Redis, *, leases_expired: int, redriven: int) -> bool:
    """Record a finished sweep; return False (and log) when Redis could not be reached.

    A sweep that could not report itself still did its work, so this never raises: the
    heartbeat going stale is how the outage shows.
    """
    try:
        with connection.pipeline(transaction=False) as pipe:
            pipe.hset(KEY, "last_run", repr(clock.now().timestamp()))
            pipe.hincrby(KEY, "leases_expired", leases_expired)
            pipe.hincrby(KEY, "redrives", redriven)
            pipe.execute()
    except RedisError as exc:
        log.warning("the sweep's heartbeat was not recorded, Redis is unreachable: %s", exc)
        return False
    return True


def read(connection: Redis) -> Heartbeat:
    """Return the sweeper's last heartbeat (last_run None: it never swept since Redis started)."""
    last_run, leases, redrives = connection.hmget(KEY, ["last_run", "leases_expired", "redrives"])
    return Heartbeat(
        last_run=float(last_run) if last_run is not None else None,
        leases_expired=int(leases or 0),
        redrives=int(redrives or 0),
    )
