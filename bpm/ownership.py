"""Who sees which rows: the one rule behind every scoped read of sagas and of owned rows.

A user who holds a model's view permission (viewers, operators) sees every row of it; anybody
else (a client's token) sees only the rows it owns, those whose `owner` is that user. Rows made
by code or commands have no owner, so only the holders of the view permission see them. A row
out of sight is reported as missing, never as forbidden, so its id tells nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet

Row = TypeVar("Row", bound=Model)


def view_permission(model: type[Model]) -> str:
    """Return the permission that shows every row of `model`, e.g. "orders.view_order"."""
    meta = model._meta
    return f"{meta.app_label}.view_{meta.model_name}"


def sees_all(user: Any, model: type[Model]) -> bool:
    """Return whether `user` sees every row of `model`; None is a trusted caller on the server."""
    return user is None or bool(user.is_active and user.has_perm(view_permission(model)))


def visible_to(user: Any, rows: QuerySet[Row]) -> QuerySet[Row]:
    """Return the rows of `rows` that `user` may see: all of them, or only the ones it owns."""
    if sees_all(user, rows.model):
        return rows
    if not user.is_authenticated:
        return rows.none()
    return rows.filter(owner=user)


def may_use(user_id: int | None, row: Any) -> bool:
    """Return whether the user with id `user_id` may act on `row` (None: a trusted caller)."""
    if user_id is None or row.owner_id == user_id:
        return True
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    return user is not None and sees_all(user, type(row))
