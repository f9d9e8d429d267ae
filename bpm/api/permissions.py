"""Who may call what: each view names the Django permissions every method needs.

The groups hold them (bpm/permissions.py): viewers read, operators also act on sagas, and a
client's user may start sagas and create customers and orders and read them back. The services
check the saga actions again, so no path around a view skips the check.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class ModelPermissions(BasePermission):
    """Allow an active, signed-in user holding every permission the view requires for the method.

    A view declares `required_permissions = {"GET": [...], "POST": [...]}`; HEAD and OPTIONS
    need what GET needs, and a method the view does not serve needs only a signed-in user (so
    it is answered 405, not 403).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        required: dict[str, list[str]] = getattr(view, "required_permissions", {})
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        return user.has_perms(required.get(method or "", []))
