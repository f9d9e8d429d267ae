"""Password logins: the development users' passwords are refused unless DEBUG is on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import backends
from django.http import HttpRequest


class ModelBackend(backends.ModelBackend):
    """Django's backend, refusing with DEBUG off a password equal to the user name.

    `make run` creates admin/admin, operator/operator, viewer/viewer and client/client for
    development; a database carried over to production must not let anyone in with them.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not settings.DEBUG and username is not None and password == username:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
