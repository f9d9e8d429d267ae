"""Who may call what: each view names the Django permissions every method needs.

The groups hold them (bpm/permissions.py): viewers read, operators also act on sagas, and a
client's user may start sagas (and create what the apps on the engine let it) and read back its
own. The services
check the saga actions again, so no path around a view skips the check. Which rows a reader then
sees is bpm.ownership's rule, applied by the selectors.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

# A permission, or a tuple of permissions of which any one will do.
Required = str | tuple[str, ...]

# Reading a model needs its view permission (every row) or its create permission (the rows one
# created, as bpm.ownership scopes them).
READ_SAGAS = ("bpm.view_sagainstance", "bpm.start_saga")


class ModelPermissions(BasePermission):
    """Allow an active, signed-in user holding every permission the view requires for the method.

    A view declares `required_permissions = {"GET": [...], "POST": [...]}`, each entry a
    permission or a tuple of alternatives; HEAD and OPTIONS need what GET needs, and a method
    the view does not serve needs only a signed-in user (so it is answered 405, not 403).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        required: dict[str, list[Required]] = getattr(view, "required_permissions", {})
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        return all(
            any(user.has_perm(name) for name in ((need,) if isinstance(need, str) else need))
            for need in required.get(method or "", [])
        )
