"""Request rates per anonymous address and per user, counted in Redis across all web processes.

The limits are read from settings on every request (BPM_API_ANON_PER_MINUTE,
BPM_API_USER_PER_MINUTE; 0 turns one off), not frozen when the module loads. While Redis is
unreachable nothing is counted and every request goes through: a rate limit must not refuse
the work that the database alone can accept.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.utils.connection import ConnectionProxy
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from bpm.outages import REDIS_ERRORS

log = logging.getLogger(__name__)


class SettingRate(SimpleRateThrottle):
    """Take the rate from the setting named by `setting`, in requests per minute."""

    setting = ""
    # Looked up per thread on each use, like django.core.cache.cache.
    cache = cast(BaseCache, ConnectionProxy(caches, "throttle"))

    def get_rate(self) -> str | None:
        per_minute = getattr(settings, self.setting)
        return f"{per_minute}/min" if per_minute else None

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except REDIS_ERRORS as exc:
            log.warning("%s not applied: Redis is unreachable (%s)", type(self).__name__, exc)
            return True


class AnonymousThrottle(SettingRate, AnonRateThrottle):
    setting = "BPM_API_ANON_PER_MINUTE"


class UserThrottle(SettingRate, UserRateThrottle):
    setting = "BPM_API_USER_PER_MINUTE"
