"""Template tags of the site's own pages (admin overrides, error pages)."""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.conf import settings
from django.contrib.auth import get_user_model

register = template.Library()

# The users `make run` creates with DEBUG on (runstack), whose password is their name.
DEVELOPMENT_LOGINS = {
    "admin": "superuser",
    "operator": "operators: retry, skip, compensate, abort",
    "viewer": "viewers: read only",
    "designer": "designers: compose definition versions",
    "designer2": "designers: approve what designer composed",
    "client": "clients: the API only",
    "reviewer": "reviewers: the task inbox's human tasks (and a viewer)",
}


@dataclass(frozen=True)
class Login:
    username: str
    role: str


@register.simple_tag
def development_logins() -> list[Login]:
    """Return the development users that exist, with DEBUG on; nothing with DEBUG off."""
    if not settings.DEBUG:
        return []
    existing = set(
        get_user_model()
        .objects.filter(username__in=DEVELOPMENT_LOGINS, is_active=True)
        .values_list("username", flat=True)
    )
    return [Login(name, role) for name, role in DEVELOPMENT_LOGINS.items() if name in existing]
