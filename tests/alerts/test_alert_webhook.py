"""Alert rules fire once per episode and resolve once, through a real local webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

import pytest
from saga_rows_for_alerts import make_stuck, unstick
from testkit import three_steps, work

from bpm import alert_delivery, alerting, clock, sweeper
from bpm.models import (
    AlertDelivery,
    AlertNotice,
    AlertRule,
    SagaInstance,
    SagaStatus,
    StuckReason,
)

pytestmark = pytest.mark.django_db(transaction=True)


def webhook_rule(url: str, **fields) -> AlertRule:
    values = {"name": "stuck orders", "channel": AlertRule.Channel.WEBHOOK, "webhook_url": url}
    return AlertRule.objects.create(**{**values, **fields}, secret="s3cret-for-the-test")


def verify(secret: str, received) -> bool:
    """What a receiver does (docs/alerts.md): recompute the signature, compare, check the age."""
    timestamp = received.headers["X-BPM-Timestamp"]
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256
    ).hexdigest()
    fresh_enough = abs(time.time() - int(timestamp)) < 300
    return hmac.compare_digest(received.headers["X-BPM-Signature"], f"v1={expected}") and (
        fresh_enough
    )


def test_a_rule_fires_once_per_episode_and_resolves_once_with_signed_calls(receiver):
    definition = three_steps()
    rule = webhook_rule(receiver.url)
    make_stuck(definition, 2)

    assert alerting.evaluate() == alerting.AlertReport(fired=1)
    work()
    # Still stuck at the next sweeps: the episode goes on, nothing more is sent.
    assert alerting.evaluate() == alerting.AlertReport()
    make_stuck(definition, 1)
    assert alerting.evaluate() == alerting.AlertReport()
    work()
    assert len(receiver.received) == 1
    fired = receiver.received[0]
    assert verify(rule.secret, fired)
    assert fired.path == "/hooks/bpm"
    assert fired.json["event"] == "alert.fired"
    assert fired.json["stuck"] == 2
    assert fired.json["rule"]["name"] == "stuck orders"
    assert fired.headers["X-BPM-Notice"] == str(fired.json["notice"])

    unstick(list(SagaInstance.objects.filter(status=SagaStatus.STUCK)))
    assert alerting.evaluate() == alerting.AlertReport(resolved=1)
    work()
    assert alerting.evaluate() == alerting.AlertReport()
    assert [r.json["event"] for r in receiver.received] == ["alert.fired", "alert.resolved"]
    assert verify(rule.secret, receiver.received[1])
    assert set(AlertNotice.objects.values_list("status", flat=True)) == {"SENT"}

    # A second episode: fires again.
    make_stuck(definition, 1)
    assert alerting.evaluate() == alerting.AlertReport(fired=1)


def test_a_tampered_body_or_another_secret_does_not_verify(receiver):
    rule = webhook_rule(receiver.url)
    make_stuck(three_steps(), 1)
    alerting.evaluate()
    work()
    received = receiver.received[0]
    assert verify(rule.secret, received)
    assert not verify("another secret", received)
    received.body = received.body.replace(b'"stuck": 1', b'"stuck": 0')
    assert not verify(rule.secret, received)


def test_a_500_is_retried_with_backoff_until_it_is_delivered(receiver, settings):
    settings.BPM_ALERT_BACKOFF = 10
    receiver.statuses = [500, 503]
    webhook_rule(receiver.url)
    make_stuck(three_steps(), 1)
    alerting.evaluate()
    work()
    notice = AlertNotice.objects.get()
    assert (notice.status, notice.attempts) == ("PENDING", 1)
    first_due = notice.due_at

    # The retry's delayed doorbell is in RQ's scheduler; the sweeper rings for it when overdue.
    clock.advance(10 + settings.BPM_REDRIVE_GRACE + 1)
    assert alert_delivery.redrive() == 1
    work()
    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == ("PENDING", 2)
    # Doubled: 20 s after the second attempt, not 10.
    assert (notice.due_at - clock.now()).total_seconds() == pytest.approx(20, abs=2)
    assert notice.due_at > first_due

    clock.advance(20 + settings.BPM_REDRIVE_GRACE + 1)
    alert_delivery.redrive()
    work()
    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == ("SENT", 3)
    attempts = list(AlertDelivery.objects.order_by("attempt").values_list("status_code", "ok"))
    assert attempts == [(500, False), (503, False), (200, True)]
    assert len(receiver.received) == 3
    # Every retry of the notice is the same notice: a receiver can tell duplicates apart.
    assert {r.headers["X-BPM-Notice"] for r in receiver.received} == {str(notice.pk)}


def test_it_gives_up_after_the_attempts_run_out(receiver, settings):
    settings.BPM_ALERT_MAX_ATTEMPTS = 2
    receiver.statuses = [500, 500, 500]
    webhook_rule(receiver.url)
    make_stuck(three_steps(), 1)
    alerting.evaluate()
    work()
    clock.advance(60)
    alert_delivery.redrive()
    work()
    notice = AlertNotice.objects.get()
    assert (notice.status, notice.attempts) == ("FAILED", 2)
    assert notice.last_error == "HTTP 500 Internal Server Error"


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(receiver):
    receiver.statuses = [301]
    webhook_rule(receiver.url)
    make_stuck(three_steps(), 1)
    alerting.evaluate()
    work()
    assert len(receiver.received) == 1
    delivery = AlertDelivery.objects.get()
    assert (delivery.ok, delivery.status_code) == (False, 301)
    assert "redirect, not followed" in delivery.error


def test_a_url_no_longer_allowed_is_refused_at_send_time(receiver, settings):
    webhook_rule(receiver.url)
    make_stuck(three_steps(), 1)
    settings.BPM_HTTP_ALLOWED_HOSTS = ["hooks.example.com"]
    alerting.evaluate()
    work()
    assert receiver.received == []
    notice = AlertNotice.objects.get()
    assert notice.status == "FAILED"
    assert "127.0.0.1 is not listed in BPM_HTTP_ALLOWED_HOSTS" in notice.last_error


def test_a_lost_doorbell_is_rung_again_by_the_sweeper(receiver, redis):
    webhook_rule(receiver.url)
    make_stuck(three_steps(), 1)
    alerting.evaluate()
    redis.flushdb()  # the doorbell is lost
    work()
    assert receiver.received == []
    clock.advance(60)
    sweeper.sweep_once()
    work()
    assert len(receiver.received) == 1
    assert AlertNotice.objects.get().status == "SENT"


def test_a_worker_that_died_mid_send_leaves_a_lease_the_sweeper_takes_back(receiver, redis):
    webhook_rule(receiver.url)
    make_stuck(three_steps(), 1)
    alerting.evaluate()
    notice = AlertNotice.objects.get()
    assert alert_delivery._claim(notice.pk, str(notice.token)) is not None  # then it dies
    redis.flushdb()
    clock.advance(120)
    assert alert_delivery.redrive() == 1
    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == ("PENDING", 1)
    assert "lease expired" in AlertDelivery.objects.get().error
    clock.advance(60)
    alert_delivery.redrive()
    work()
    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == ("SENT", 2)


def test_a_threshold_within_a_window_counts_only_recently_stuck_sagas(receiver):
    definition = three_steps()
    webhook_rule(
        receiver.url, threshold=3, window_minutes=10, stuck_reason=StuckReason.RETRIES_EXHAUSTED
    )
    make_stuck(definition, 2, updated_at=clock.now() - timedelta(hours=1))
    make_stuck(definition, 2)
    make_stuck(definition, 5, stuck_reason=StuckReason.TIMED_OUT)
    assert alerting.evaluate() == alerting.AlertReport()
    make_stuck(definition, 1)
    assert alerting.evaluate() == alerting.AlertReport(fired=1)
    # Eleven minutes later the three have aged out of the window: resolved.
    clock.advance(11 * 60)
    assert alerting.evaluate() == alerting.AlertReport(resolved=1)


def test_switching_a_firing_rule_off_resolves_its_episode(receiver):
    rule = webhook_rule(receiver.url)
    make_stuck(three_steps(), 1)
    alerting.evaluate()
    AlertRule.objects.filter(pk=rule.pk).update(is_active=False)
    assert alerting.evaluate() == alerting.AlertReport(resolved=1)


def test_an_email_rule_sends_through_djangos_email_framework(mailoutbox):
    AlertRule.objects.create(
        name="ops mail", channel=AlertRule.Channel.EMAIL, email_to="ops@example.com, b@example.com"
    )
    make_stuck(three_steps(), 3)
    alerting.evaluate()
    work()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ops@example.com", "b@example.com"]
    assert mailoutbox[0].subject == "[bpm alert] ops mail fired: 3 stuck"
    assert AlertNotice.objects.get().status == "SENT"
