"""What alerting costs each sweep: constant when idle, one counting query for every rule."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from saga_rows_for_alerts import make_stuck
from testkit import three_steps

from bpm import alert_delivery, alerting
from bpm.models import AlertRule

pytestmark = pytest.mark.django_db


def queries(action) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured)


def rules(count: int) -> None:
    for index in range(count):
        AlertRule.objects.create(
            name=f"rule {index}",
            channel=AlertRule.Channel.EMAIL,
            email_to="ops@example.com",
            threshold=1000,
            window_minutes=index + 1 if index % 2 else None,
        )


def test_with_no_rules_evaluating_and_redriving_cost_one_query_each():
    assert queries(alerting.evaluate) == 1
    assert queries(alert_delivery.redrive) == 1


def test_one_query_counts_for_every_rule_however_many_sagas_are_stuck():
    definition = three_steps()
    rules(1)
    make_stuck(definition, 3)
    one_rule = queries(alerting.evaluate)
    rules_more = 20
    AlertRule.objects.all().delete()
    rules(rules_more)
    make_stuck(definition, 300)
    assert one_rule == queries(alerting.evaluate) == 2
