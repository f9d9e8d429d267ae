"""Alert rules: which rules hold, and the episodes they start and end (run by every sweep).

A rule fires once when its condition starts to hold and resolves once when it stops: each is
an AlertNotice row, written with the rule's new state in one transaction under the rule's lock
(two sweepers cannot both start an episode), and delivered by the workers (bpm/alert_delivery.py).
One query reads the active rules and, when there are any, one more counts every rule's stuck
sagas at once: the sweep's cost does not grow with the rules' sagas or with the table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse

from bpm import alert_delivery, clock
from bpm.models import AlertNotice, AlertRule, SagaInstance, SagaStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertReport:
    fired: int = 0
    resolved: int = 0


def matching(rule: AlertRule, now: datetime) -> Q:
    """Return the condition on stuck sagas that `rule` counts."""
    condition = Q()
    if rule.definition_name:
        condition &= Q(definition_name=rule.definition_name)
    if rule.stuck_reason:
        condition &= Q(stuck_reason=rule.stuck_reason)
    if rule.window_minutes:
        # A stuck saga's last change is its getting stuck (nothing else changes it meanwhile).
        condition &= Q(updated_at__gte=now - timedelta(minutes=rule.window_minutes))
    return condition


def stuck_counts(rules: list[AlertRule], now: datetime) -> dict[int, int]:
    """Return {rule id: how many stuck sagas it counts}, in one statement over stuck sagas."""
    if not rules:
        return {}
    aggregates = {f"rule{rule.pk}": Count("pk", filter=matching(rule, now)) for rule in rules}
    counts = SagaInstance.objects.filter(status=SagaStatus.STUCK).aggregate(**aggregates)
    return {rule.pk: counts[f"rule{rule.pk}"] for rule in rules}


def evaluate() -> AlertReport:
    """Start an episode for every rule that holds and is quiet, end it for every one that stopped.

    Inactive rules still firing are resolved: switching a rule off ends its episode.
    """
    now = clock.now()
    rules = list(AlertRule.objects.filter(Q(is_active=True) | Q(firing_since__isnull=False)))
    counts = stuck_counts([rule for rule in rules if rule.is_active], now)
    fired = resolved = 0
    for rule in rules:
        count = counts.get(rule.pk, 0)
        holds = rule.is_active and count >= rule.threshold
        if holds and rule.firing_since is None:
            fired += _change(rule.pk, firing=True, count=count)
        elif not holds and rule.firing_since is not None:
            resolved += _change(rule.pk, firing=False, count=count)
    return AlertReport(fired=fired, resolved=resolved)


def _change(rule_id: int, *, firing: bool, count: int) -> int:
    """Fire or resolve the rule under its lock, if nobody did meanwhile; return 1 if this did."""
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().filter(pk=rule_id).first()
        if rule is None or (rule.firing_since is not None) == firing:
            return 0
        now = clock.now()
        episode = now if firing else rule.firing_since
        assert episode is not None
        rule.firing_since = now if firing else None
        rule.save(update_fields=["firing_since"])
        kind = AlertNotice.Kind.FIRED if firing else AlertNotice.Kind.RESOLVED
        notice = AlertNotice.objects.create(
            rule=rule,
            rule_name=rule.name,
            kind=kind,
            episode_started_at=episode,
            channel=rule.channel,
            payload=payload(rule, kind=kind, count=count, episode=episode, at=now),
            due_at=now,
        )
        alert_delivery.ring(notice)
    log.info("alert %s %s (%d stuck)", rule.name, kind.lower(), count)
    return 1


def payload(
    rule: AlertRule, *, kind: str, count: int, episode: datetime, at: datetime
) -> dict[str, Any]:
    """Return what a notice says: the rule, the event, the count and where to look."""
    filters: dict[str, str] = {"status": SagaStatus.STUCK}
    if rule.definition_name:
        filters["definition"] = rule.definition_name
    if rule.stuck_reason:
        filters["reason"] = rule.stuck_reason
    return {
        "event": f"alert.{kind.lower()}",
        "rule": {
            "id": rule.pk,
            "name": rule.name,
            "definition": rule.definition_name or None,
            "stuck_reason": rule.stuck_reason or None,
            "threshold": rule.threshold,
            "window_minutes": rule.window_minutes,
        },
        "stuck": count,
        "episode_started_at": episode.isoformat(),
        "at": at.isoformat(),
        "sagas": f"{reverse('dashboard:sagas')}?{urlencode(filters)}",
    }
