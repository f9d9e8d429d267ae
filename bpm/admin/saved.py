"""For admin pages whose rows are written by a service rather than by the admin's own save."""

from __future__ import annotations

from django.db.models import Model


def adopt(unsaved: Model, saved: Model) -> None:
    """Make the admin's unsaved object the row the service wrote, so the admin logs it and
    redirects to it."""
    for field in saved._meta.concrete_fields:
        setattr(unsaved, field.attname, getattr(saved, field.attname))
    unsaved._state.adding = False
    unsaved._state.db = saved._state.db
