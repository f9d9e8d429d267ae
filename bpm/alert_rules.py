"""Alert rules' services: the only writers of AlertRule rows (the sweeper writes their state)."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from bpm import clock, outbound
from bpm.errors import PermissionDenied
from bpm.models import AlertRule

FIELDS = (
    "name",
    "definition_name",
    "stuck_reason",
    "threshold",
    "window_minutes",
    "channel",
    "email_to",
    "webhook_url",
    "is_active",
)
# A week: a longer window would count sagas the operators have long forgotten.
MAX_WINDOW_MINUTES = 7 * 24 * 60


def may_manage(user: Any, change: str = "change") -> bool:
    """Return whether `user` may add, change or delete (`change`) alert rules."""
    return bool(user is not None and user.is_active and user.has_perm(f"bpm.{change}_alertrule"))


def _authorize(user: Any, change: str) -> None:
    if not may_manage(user, change):
        who = user.get_username() if user is not None else "an anonymous user"
        raise PermissionDenied(
            f"{who} may not {change} alert rules: that needs the bpm.{change}_alertrule "
            "permission, which the operators group has"
        )


def validate(values: dict[str, Any]) -> dict[str, list[str]]:
    """Return the errors of a rule's values by field (empty when it may be saved)."""
    errors: dict[str, list[str]] = {}
    window = values.get("window_minutes")
    if window is not None and not 1 <= window <= MAX_WINDOW_MINUTES:
        errors["window_minutes"] = [f"Between 1 and {MAX_WINDOW_MINUTES} minutes (a week)."]
    if (values.get("threshold") or 0) < 1:
        errors["threshold"] = ["At least 1."]
    if values.get("channel") == AlertRule.Channel.EMAIL:
        addresses = [a.strip() for a in (values.get("email_to") or "").split(",") if a.strip()]
        if not addresses:
            errors["email_to"] = ["Name at least one address to send the alerts to."]
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                errors.setdefault("email_to", []).append(f"{address!r} is not an email address.")
    elif values.get("channel") == AlertRule.Channel.WEBHOOK:
        url = (values.get("webhook_url") or "").strip()
        if not url:
            errors["webhook_url"] = ["A webhook needs its URL."]
        else:
            try:
                outbound.check_url(url)
            except outbound.UrlRefused as refused:
                errors["webhook_url"] = [f"This URL may not be called: {refused}."]
    return errors


def alert_rule_create(*, user: Any, values: dict[str, Any]) -> AlertRule:
    """Create a rule from validated values; a webhook rule gets a new signing secret."""
    _authorize(user, "add")
    rule = AlertRule(**{key: values[key] for key in FIELDS if key in values}, created_by=user)
    rule.webhook_url = rule.webhook_url.strip()
    if rule.channel == AlertRule.Channel.WEBHOOK:
        rule.secret = new_secret()
    rule.save()
    return rule


def alert_rule_update(*, user: Any, rule_id: int, values: dict[str, Any]) -> AlertRule:
    """Change a rule; its episode (if firing) goes on, a rule switched off resolves next sweep."""
    _authorize(user, "change")
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().get(pk=rule_id)
        for key in FIELDS:
            if key in values:
                setattr(rule, key, values[key])
        rule.webhook_url = rule.webhook_url.strip()
        if rule.channel == AlertRule.Channel.WEBHOOK and not rule.secret:
            rule.secret = new_secret()
        rule.updated_at = clock.now()
        rule.save()
        return rule


def alert_rule_rotate_secret(*, user: Any, rule_id: int) -> str:
    """Give the rule a new signing secret and return it (shown once to the operator)."""
    _authorize(user, "change")
    secret = new_secret()
    AlertRule.objects.filter(pk=rule_id).update(secret=secret, updated_at=clock.now())
    return secret


def alert_rule_delete(*, user: Any, rule_id: int) -> None:
    """Delete the rule; its notices and their attempts stay in the log under its name."""
    _authorize(user, "delete")
    AlertRule.objects.filter(pk=rule_id).delete()


def new_secret() -> str:
    return secrets.token_hex(32)
