"""An API client for another thread, sending a token as a designer's script would."""

from __future__ import annotations

from rest_framework.test import APIClient


def token_client(authorization: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=authorization)
    return api
