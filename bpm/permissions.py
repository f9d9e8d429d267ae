"""Who may do what: the custom permissions that guard every saga action, and the check.

Groups carry them (created by migrations): viewers read everything, operators may also act on
sagas, designers may also compose definition versions and review each other's drafts. Clients is
what an API client's user gets: it may start sagas and create what the site allows (orders and
customers), read back only what it created, and never act on a saga.

The engine knows no app that uses it: the site's settings name the apps whose models the groups
see (BPM_GROUP_APPS) and what clients may create in them (BPM_CLIENT_PERMISSIONS).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from bpm.errors import PermissionDenied
from bpm.models import actor_for_user

VIEWERS = "viewers"
OPERATORS = "operators"
CLIENTS = "clients"
DESIGNERS = "designers"

START = "start"
RETRY = "retry"
SKIP = "skip"
COMPENSATE = "compensate"
ABORT = "abort"
MIGRATE = "migrate"
COMPOSE = "compose"

# The permission each action needs, as `user.has_perm` spells it.
REQUIRED = {
    START: "bpm.start_saga",
    RETRY: "bpm.retry_saga",
    SKIP: "bpm.skip_saga",
    COMPENSATE: "bpm.compensate_saga",
    ABORT: "bpm.abort_saga",
    MIGRATE: "bpm.migrate_saga",
    COMPOSE: "bpm.compose_sagadefinition",
}
# The group that holds each action's permission, named in a refusal.
HOLDERS = {COMPOSE: DESIGNERS}

# Operators also act on sagas. They do not change what a definition runs: that is a change of
# the business process, for designers.
OPERATOR_EXTRA = [
    ("bpm", "start_saga"),
    ("bpm", "retry_saga"),
    ("bpm", "skip_saga"),
    ("bpm", "compensate_saga"),
    ("bpm", "abort_saga"),
    # Alert rules (bpm/alerting.py) and views of the saga list shared with everyone.
    ("bpm", "add_alertrule"),
    ("bpm", "change_alertrule"),
    ("bpm", "delete_alertrule"),
    ("bpm", "share_savedview"),
    ("bpm", "migrate_saga"),
]
# Designers compose definition versions as drafts and approve or reject other designers' drafts.
DESIGNER_EXTRA = [("bpm", "compose_sagadefinition")]
# Permissions that an older release gave operators, taken back by migration 0007.
OPERATOR_WITHDRAWN = [("bpm", "add_sagadefinition"), ("bpm", "add_stepdefinition")]
# An API client starts sagas and reads back what it created: it holds no view permission on the
# sagas, since holding one shows every row (bpm.ownership). The site adds what it may create.
CLIENT_PERMISSIONS = [("bpm", "start_saga"), ("bpm", "view_sagadefinition")]


def group_apps() -> tuple[str, ...]:
    """Return the apps whose models the groups see: bpm, and those of BPM_GROUP_APPS."""
    others = getattr(settings, "BPM_GROUP_APPS", ())
    if isinstance(others, str) or not all(isinstance(label, str) and label for label in others):
        raise ImproperlyConfigured(f"BPM_GROUP_APPS must be a list of app labels, not {others!r}")
    return ("bpm", *others)


def client_permissions() -> list[tuple[str, str]]:
    """Return the clients' (app label, codename) permissions: bpm's and BPM_CLIENT_PERMISSIONS."""
    named = getattr(settings, "BPM_CLIENT_PERMISSIONS", ())
    pairs = [tuple(name.split(".")) for name in named if isinstance(name, str)]
    if isinstance(named, str) or len(pairs) != len(named) or any(len(p) != 2 for p in pairs):
        raise ImproperlyConfigured(
            'BPM_CLIENT_PERMISSIONS must be a list of "app_label.codename", not {named!r}'
        )
    return [*CLIENT_PERMISSIONS, *((label, codename) for label, codename in pairs)]


def sync_groups(app_label: str, apps: Apps = global_apps, using: str = "default") -> None:
    """Give the groups their permissions on one app's models; only adds, never takes away.

    Runs after every migrate (and every test flush), so a model added later is visible to viewers
    without a migration of its own.
    """
    if app_label not in group_apps():
        return
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    app_permissions = permission_model.objects.using(using).filter(
        content_type__app_label=app_label
    )
    viewing = list(app_permissions.filter(codename__startswith="view_"))

    def pick(pairs: list[tuple[str, str]]) -> list[Any]:
        codenames = [codename for label, codename in pairs if label == app_label]
        return list(app_permissions.filter(codename__in=codenames))

    members = {
        VIEWERS: viewing,
        OPERATORS: viewing + pick(OPERATOR_EXTRA),
        DESIGNERS: viewing + pick(DESIGNER_EXTRA),
        CLIENTS: pick(client_permissions()),
    }
    for name, granted in members.items():
        group, _ = group_model.objects.using(using).get_or_create(name=name)
        group.permissions.add(*granted)


def ensure_task_groups(using: str = "default") -> None:
    """Make the groups that human tasks go to (BPM_TASK_GROUPS), with no permissions of their own.

    Working a task needs only membership; its members also need a viewer's permissions to use
    the dashboard's inbox (the API's needs none).
    """
    from django.contrib.auth.models import Group

    for name in getattr(settings, "BPM_TASK_GROUPS", ()):
        Group.objects.using(using).get_or_create(name=name)


def may(user: Any, action: str) -> bool:
    """Return whether `user` holds the permission `action` needs."""
    return bool(user is not None and user.is_active and user.has_perm(REQUIRED[action]))


def authorize(*, user: Any, actor: str, action: str) -> str:
    """Return the actor to record for `action`, raising PermissionDenied if `user` may not act.

    A request from a person passes its `user`, whose permission is checked and whose name becomes
    the actor. Trusted callers on the server (management commands, the engine, tests) pass no user
    and name themselves in `actor`.
    """
    if user is None:
        if not actor:
            raise ValueError("an actor or a user is required")
        return actor
    if not may(user, action):
        raise PermissionDenied(refusal(user, action))
    return actor_for_user(user)


def refusal(user: Any, action: str) -> str:
    """Return why `user` may not take `action`: the permission it needs, and who holds it."""
    who = (user.get_username() if user is not None else "") or "an anonymous user"
    what = "saga definition versions" if action == COMPOSE else "sagas"
    message = f"{who} may not {action} {what}: that needs the {REQUIRED[action]} permission"
    if action != START:
        message += f", which the {HOLDERS.get(action, OPERATORS)} group has"
    return message
