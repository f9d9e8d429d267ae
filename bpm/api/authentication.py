"""Token authentication that throttles guessing: failed tokens count against the address."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from bpm.api.throttling import window_count, window_hit
from bpm.client_address import client_address


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token check; after BPM_API_TOKEN_FAILURES failures an address gets 429.

    The count is checked before the token is, so a guesser learns nothing more until the window
    (BPM_API_TOKEN_FAILURE_WINDOW seconds) has let old failures go.
    """

    def authenticate(self, request: Request) -> Any:
        if not self._offers_token(request):
            return None
        limit = settings.BPM_API_TOKEN_FAILURES
        window = settings.BPM_API_TOKEN_FAILURE_WINDOW
        key = f"token-failures:{client_address(request._request)}"
        if limit and window_count(key, seconds=window) >= limit:
            raise exceptions.Throttled(
                wait=window, detail="Too many failed token authentications from this address."
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            if limit:
                window_hit(key, limit=limit, seconds=window)
            raise

    def _offers_token(self, request: Request) -> bool:
        words = authentication.get_authorization_header(request).split()
        return bool(words) and words[0].lower() == self.keyword.lower().encode()
