"""Idempotency-Key for the POSTs that create something, as Stripe does it.

The first request with a key claims it: an IN_PROGRESS row, unique per (user, key), inserted
and committed before the work starts, so a concurrent repeat finds it. The work and the stored
response commit together, in one transaction that first locks the claim's row and is fenced by
its token; a repeat then gets the stored status and body again (or 422 when its method, path or
body differ). A failed request releases its claim, so the client may try again with the same key.

Whether the claimant still runs is read from that row lock, not from a clock: the database
drops a transaction's locks the moment its connection dies (a terminated backend, a killed
process, an outage). So a repeat that finds the row locked is told 409 (still in progress), and
one that can lock it takes the key over at once: the claimant's work either committed with its
response (the row is DONE, and is replayed) or rolled back with it. This is what lets a client
retry right after a 503: a request that died mid-way, during a database outage that also kept
it from releasing its claim, left a committed claim and no work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from bpm import clock
from bpm.api.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from bpm.api.models import IdempotencyRecord, IdempotencyState

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Printable ASCII without spaces, as header values travel safely; UUIDs fit comfortably.
KEY_PATTERN = r"^[!-~]{1,255}$"
# Response headers worth replaying.
KEPT_HEADERS = ("Location",)
CLAIM_ATTEMPTS = 5

log = logging.getLogger(__name__)


def idempotent(request: Request, create: Callable[[], Response]) -> Response:
    """Return `create()`'s response, run once per Idempotency-Key; without a key, just run it."""
    key = request.headers.get(HEADER)
    if key is None:
        return create()
    if not re.fullmatch(KEY_PATTERN, key):
        raise exceptions.ValidationError(
            {HEADER: ["Must be 1 to 255 printable ASCII characters, without spaces."]}
        )
    # Reading request.data first makes malformed JSON a 400 before any key is claimed.
    record = _claim(
        request.user, key, fingerprint(request.method or "", request.path, request.data)
    )
    if record.state == IdempotencyState.DONE:
        return _replay(record)
    try:
        with transaction.atomic():
            _hold(record)
            response = create()
            if status.is_success(response.status_code):
                _complete(record, response)
    except BaseException:
        _release_after_failure(record)
        raise
    if not status.is_success(response.status_code):
        _release(record)
    return response


def fingerprint(method: str, path: str, data: Any) -> str:
    """Return a digest of what makes two requests the same: method, path and JSON body.

    The body is compared as the JSON value it parses to, not as its text: key order, spacing
    and the spelling of a number (5, 5.0, 5e0) do not make a different request.
    """
    body = json.dumps(_normalised(data), sort_keys=True, separators=(",", ":"), default=str)
    text = f"{method} {path}\n{body}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _normalised(value: Any) -> Any:
    """Return `value` with every number spelt one way; strings and numbers tagged apart."""
    if isinstance(value, str):
        return f"s{value}"
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        number = Decimal(value) if isinstance(value, int) else Decimal(str(value))
        if not number.is_finite():
            return f"n{number}"
        return f"n{number.normalize():E}" if number else "n0"
    if isinstance(value, Mapping):
        return {str(key): _normalised(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalised(item) for item in value]
    return value


def _claim(user: Any, key: str, fingerprint: str) -> IdempotencyRecord:
    """Return this request's claim on the key, or the completed record to replay."""
    records = IdempotencyRecord.objects.filter(user=user, key=key)
    for _ in range(CLAIM_ATTEMPTS):
        now = clock.now()
        # Every expired key, not only this one: the table holds one expiry period of keys.
        IdempotencyRecord.objects.filter(expires_at__lte=now).delete()
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    user=user,
                    key=key,
                    fingerprint=fingerprint,
                    expires_at=now + timedelta(seconds=settings.BPM_API_IDEMPOTENCY_EXPIRY),
                )
        except IntegrityError:
            pass
        existing = records.first()
        if existing is None:
            continue  # released between our insert and our read: try again
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if existing.state == IdempotencyState.DONE:
            return existing
        taken = _take_over(existing)
        if taken is not None:
            return taken
        if records.filter(token=existing.token, state=IdempotencyState.IN_PROGRESS).exists():
            raise IdempotencyKeyInUse()  # its request holds the row: it is running
        # Completed, released or taken over meanwhile: look again.
    raise IdempotencyKeyInUse()


def _take_over(record: IdempotencyRecord) -> IdempotencyRecord | None:
    """Claim a key whose request is no longer running; None while it runs."""
    with transaction.atomic():
        # A running request holds its claim's row lock for the whole of its work (_hold). On
        # SQLite, which has no row locks, this transaction waits for the claimant's instead.
        free = (
            IdempotencyRecord.objects.select_for_update(skip_locked=True)
            .filter(pk=record.pk, token=record.token, state=IdempotencyState.IN_PROGRESS)
            .first()
        )
        if free is None:
            return None
        free.token = uuid.uuid4()
        free.save(update_fields=["token"])
    return free


def _hold(record: IdempotencyRecord) -> None:
    """Lock our claim's row until the work's transaction ends, or fail if it was taken over."""
    held = (
        IdempotencyRecord.objects.select_for_update()
        .filter(pk=record.pk, token=record.token, state=IdempotencyState.IN_PROGRESS)
        .values_list("pk", flat=True)
    )
    if not list(held):
        raise IdempotencyKeyInUse()


def _complete(record: IdempotencyRecord, response: Response) -> None:
    """Store the response with the work it describes, if the claim is still ours."""
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    stored = IdempotencyRecord.objects.filter(
        pk=record.pk, token=record.token, state=IdempotencyState.IN_PROGRESS
    ).update(
        state=IdempotencyState.DONE,
        response_status=response.status_code,
        response_body=response.data,
        response_headers=headers,
    )
    if not stored:
        # Taken over (only possible where the row could not be locked): the work rolls back.
        raise IdempotencyKeyInUse()


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(
        pk=record.pk, token=record.token, state=IdempotencyState.IN_PROGRESS
    ).delete()


def _release_after_failure(record: IdempotencyRecord) -> None:
    """Release the claim of a request that failed, unless the database is unreachable too."""
    try:
        _release(record)
    except DatabaseError as exc:
        # The claim stays, but no transaction holds its row: the next request with the key
        # takes it over at once (see _take_over).
        log.warning("Idempotency-Key %r not released: %s", record.key, exc)


def _replay(record: IdempotencyRecord) -> Response:
    assert record.response_status is not None
    headers = {**record.response_headers, REPLAYED_HEADER: "true"}
    return Response(record.response_body, status=record.response_status, headers=headers)
