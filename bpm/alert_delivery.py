"""Delivering alert notices from the workers: claim, send, record, retry with backoff.

The notice row is the truth and an RQ job (bpm.tasks.answer_alert_doorbell) only its doorbell,
carrying the notice's id and fence token. A worker claims a due PENDING notice under that token
(SENDING, with a lease), sends outside any transaction, then records the attempt: SENT, or
PENDING again with a new token and a doubled delay, or FAILED when the attempts ran out. Every
attempt is an AlertDelivery row. The sweeper rings again for a notice whose doorbell was lost and
turns an expired lease (a worker that died mid-send) into a failed attempt: a webhook receiver
may therefore see a notice twice, and tells by its X-BPM-Notice header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q

from bpm import clock, dispatch, outbound, redis_connection
from bpm.models import AlertDelivery, AlertNotice, AlertRule

log = logging.getLogger(__name__)

JOB_FUNCTION = dispatch.ALERT_JOB_FUNCTION
# Past the call's own timeout: a lease longer than any send, so only a dead worker outlives it.
LEASE_MARGIN = 30
SIGNATURE_HEADER = "X-BPM-Signature"
TIMESTAMP_HEADER = "X-BPM-Timestamp"
BATCH = 100


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header's value: v1=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))."""
    signed = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def ring(notice: AlertNotice) -> None:
    """Enqueue the notice's doorbell when the current transaction commits (delayed if not due)."""
    notice_id, token, due_at = notice.pk, str(notice.token), notice.due_at
    transaction.on_commit(lambda: _enqueue(notice_id, token, due_at), robust=True)


def _enqueue(notice_id: int, token: str, due_at: datetime) -> None:
    queue = redis_connection.queue(settings.BPM_QUEUES[0])
    job_id = f"bpm-alert-{notice_id}-{token}"
    options = {
        "job_id": job_id,
        "job_timeout": int(settings.BPM_ALERT_TIMEOUT + LEASE_MARGIN),
        "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600,
    }
    delay = (due_at - clock.now()).total_seconds()
    if delay <= 0:
        queue.enqueue(JOB_FUNCTION, notice_id, token, **options)
    else:
        queue.enqueue_at(
            datetime.now(UTC) + timedelta(seconds=delay), JOB_FUNCTION, notice_id, token, **options
        )


def deliver(notice_id: int, token: str) -> str | None:
    """Claim the notice under `token`, send it once and record the attempt; return its status.

    None when the doorbell is stale (another token, not due, already sent).
    """
    notice = _claim(notice_id, token)
    if notice is None:
        return None
    started = time.monotonic()
    ok, status_code, error = _send(notice)
    took = int((time.monotonic() - started) * 1000)
    return _record(notice, ok=ok, status_code=status_code, error=error, duration_ms=took)


def _claim(notice_id: int, token: str) -> AlertNotice | None:
    with transaction.atomic():
        notice = (
            AlertNotice.objects.select_for_update(of=("self",))
            .select_related("rule")
            .filter(pk=notice_id, token=token, status=AlertNotice.Status.PENDING)
            .first()
        )
        # The scheduler may promote a delayed doorbell a moment before the row's due time.
        if notice is None or notice.due_at > clock.now() + timedelta(seconds=1):
            return None
        notice.status = AlertNotice.Status.SENDING
        notice.attempts += 1
        notice.lease_expires_at = clock.now() + timedelta(
            seconds=settings.BPM_ALERT_TIMEOUT + LEASE_MARGIN
        )
        notice.save(update_fields=["status", "attempts", "lease_expires_at"])
        return notice


def _send(notice: AlertNotice) -> tuple[bool, int | None, str]:
    """Send the notice through its rule's channel; return (ok, HTTP status, error)."""
    rule = notice.rule
    if rule is None:
        return False, None, "the rule was deleted"
    try:
        if notice.channel == AlertRule.Channel.EMAIL:
            _send_email(rule, notice)
            return True, None, ""
        return _post_webhook(rule, notice)
    except outbound.UrlRefused as refused:
        return False, None, f"refused: {refused}"
    except Exception as error:  # any fault of the outside world is a failed attempt
        return False, None, f"{type(error).__name__}: {error}"


def _send_email(rule: AlertRule, notice: AlertNotice) -> None:
    facts = notice.payload
    verb = "fired" if notice.kind == AlertNotice.Kind.FIRED else "resolved"
    subject = f"[bpm alert] {rule.name} {verb}: {facts.get('stuck', 0)} stuck"
    body = "\n".join(
        [
            f"The alert rule {rule.name!r} {verb} at {facts.get('at')}.",
            f"Stuck sagas it counts now: {facts.get('stuck')}",
            f"Episode started: {facts.get('episode_started_at')}",
            f"Sagas: {facts.get('sagas')}",
        ]
    )
    recipients = [address.strip() for address in rule.email_to.split(",") if address.strip()]
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)


def _post_webhook(rule: AlertRule, notice: AlertNotice) -> tuple[bool, int | None, str]:
    body = json.dumps({**notice.payload, "notice": notice.pk}, sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        SIGNATURE_HEADER: sign(rule.secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        "X-BPM-Notice": str(notice.pk),
        "X-BPM-Event": str(notice.payload.get("event", "")),
        "User-Agent": "bpm-alerts/1",
    }
    response = outbound.post_json(
        rule.webhook_url, body=body, headers=headers, timeout=settings.BPM_ALERT_TIMEOUT
    )
    if 200 <= response.status_code < 300:
        return True, response.status_code, ""
    reason = "a redirect, not followed" if response.is_redirect else response.reason_phrase
    return False, response.status_code, f"HTTP {response.status_code} {reason}".strip()


def _record(
    notice: AlertNotice, *, ok: bool, status_code: int | None, error: str, duration_ms: int
) -> str | None:
    with transaction.atomic():
        current = AlertNotice.objects.select_for_update().filter(pk=notice.pk).first()
        AlertDelivery.objects.create(
            notice_id=notice.pk,
            attempt=notice.attempts,
            ok=ok,
            status_code=status_code,
            error=error[:2000],
            duration_ms=duration_ms,
            worker=dispatch.worker_actor(),
        )
        if (
            current is None
            or current.status != AlertNotice.Status.SENDING
            or current.token != notice.token
        ):
            # The sweeper took the lease back meanwhile: this attempt is logged, nothing more.
            return None
        _after_attempt(current, ok=ok, error=error)
        return current.status


def _after_attempt(notice: AlertNotice, *, ok: bool, error: str) -> None:
    """Move a SENDING notice on after an attempt: SENT, retried later, or FAILED."""
    notice.lease_expires_at = None
    notice.last_error = error[:2000]
    refused = error.startswith("refused:") or error == "the rule was deleted"
    if ok:
        notice.status = AlertNotice.Status.SENT
        notice.sent_at = clock.now()
    elif refused or notice.attempts >= settings.BPM_ALERT_MAX_ATTEMPTS:
        notice.status = AlertNotice.Status.FAILED
    else:
        notice.status = AlertNotice.Status.PENDING
        notice.token = uuid.uuid4()
        notice.due_at = clock.now() + timedelta(seconds=backoff(notice.attempts))
        ring(notice)
    notice.save()
    if not ok:
        log.warning("alert notice %s attempt %d failed: %s", notice.pk, notice.attempts, error)


def backoff(attempts: int) -> float:
    """Return the delay after the `attempts`-th failed attempt: doubling, capped."""
    delay: float = settings.BPM_ALERT_BACKOFF * 2 ** (attempts - 1)
    return min(delay, settings.BPM_ALERT_MAX_BACKOFF)


def redrive() -> int:
    """Ring again for notices whose doorbell was lost; take back leases of dead workers.

    One query when nothing is on its way (the partial index holds only unsent notices).
    """
    now = clock.now()
    cutoff = now - timedelta(seconds=settings.BPM_REDRIVE_GRACE)
    lost = Q(status=AlertNotice.Status.PENDING, due_at__lte=cutoff) | Q(
        status=AlertNotice.Status.SENDING, lease_expires_at__lt=now
    )
    candidates = list(
        AlertNotice.objects.filter(
            lost, status__in=[AlertNotice.Status.PENDING, AlertNotice.Status.SENDING]
        ).values_list("pk", flat=True)[:BATCH]
    )
    return sum(_ring_again(notice_id, cutoff) for notice_id in candidates)


def _ring_again(notice_id: int, cutoff: datetime) -> int:
    with transaction.atomic():
        notice = AlertNotice.objects.select_for_update().filter(pk=notice_id).first()
        if notice is None:
            return 0
        if notice.status == AlertNotice.Status.SENDING:
            if notice.lease_expires_at is None or notice.lease_expires_at >= clock.now():
                return 0
            AlertDelivery.objects.create(
                notice=notice,
                attempt=notice.attempts,
                ok=False,
                error="the lease expired: the worker died or hung while sending",
                worker="sweeper",
            )
            _after_attempt(notice, ok=False, error="the lease expired")
            return 1
        if notice.status != AlertNotice.Status.PENDING or notice.due_at > cutoff:
            return 0
        notice.token = uuid.uuid4()
        notice.save(update_fields=["token"])
        ring(notice)
        return 1
