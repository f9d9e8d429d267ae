"""A simulated card gateway: the outside world, standing in for a processor across a network.

Payment methods behave like a processor's test cards:

- ``credit_card`` approves.
- ``card_declined`` is always declined (a business refusal).
- ``card_flaky`` fails with GatewayUnavailable on the first two requests per idempotency key,
  then approves.
- ``card_down`` always fails with GatewayUnavailable: the requests never reach the gateway, so
  it keeps no record of them. Refunding a charge made with it fails the same way.
- ``card_slow`` waits ``settings.PAYMENTS_GATEWAY_SLOW_SECONDS`` (default 3.0), then approves.

Any other method is declined as unknown. Like Stripe, the gateway is idempotent per key: a
repeated request returns the first outcome and never charges twice. A refund gives back whatever
the key holds: it refunds a charge, voids one still in flight, and voids a key the gateway has
not seen yet (as a processor cancels a payment intent), so a charge that arrives later under that
key is refused instead of taking money that nobody will give back. Its ledger (GatewayCharge)
is written in short transactions of its own, as a remote processor commits on its side whatever
later happens to the caller: do not call it inside a transaction you may roll back.

``settings.PAYMENTS_GATEWAY_ANSWER_DELAY`` (default 0) makes the gateway wait that many seconds
after it has charged before it answers, as an answer lost or late on the network would: a worker
killed meanwhile leaves a charge whose payment it never recorded (the tests use it).
"""

from __future__ import annotations

import secrets
import time
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from payments.models import ChargeStatus, GatewayCharge

CREDIT_CARD = "credit_card"
CARD_DECLINED = "card_declined"
CARD_FLAKY = "card_flaky"
CARD_DOWN = "card_down"
CARD_SLOW = "card_slow"
METHODS = (CREDIT_CARD, CARD_DECLINED, CARD_FLAKY, CARD_DOWN, CARD_SLOW)
# How many requests per idempotency key card_flaky fails before it approves.
FLAKY_FAILURES = 2


class GatewayError(Exception):
    """Base for every error the gateway answers with."""


class GatewayUnavailable(GatewayError):
    """The gateway could not be reached or failed transiently: try again later."""


class CardDeclined(GatewayError):
    """The charge was refused; asking again with the same key gets the same answer."""


class IdempotencyKeyReused(GatewayError):
    """The key was first used for a different charge."""


def charge(*, idempotency_key: str, method: str, amount: Decimal) -> GatewayCharge:
    """Charge `amount` to the card, once per key; return the CHARGED record or raise."""
    if method == CARD_DOWN:
        raise GatewayUnavailable("the card gateway is unreachable (card_down)")
    record = _receive(idempotency_key, method, amount)
    if record.status == ChargeStatus.PENDING:
        record = _process(record)
        if record.status == ChargeStatus.CHARGED and answer_delay():
            time.sleep(answer_delay())
    if record.status == ChargeStatus.CHARGED:
        return record
    if record.status == ChargeStatus.DECLINED:
        raise CardDeclined(_decline_message(record.method))
    raise CardDeclined(
        f"the charge under key {idempotency_key!r} was {record.status.lower()}; "
        "a new charge needs a new key"
    )


def refund(*, idempotency_key: str) -> GatewayCharge:
    """Give back whatever the key holds, and return the key's record.

    A CHARGED charge is REFUNDED, a PENDING one (still in flight) VOIDED, and a key the gateway
    has not received is recorded VOIDED, so a charge request that arrives later under it is
    refused. Refunding twice is harmless.
    """
    with transaction.atomic():
        record = _locked(idempotency_key)
        if record is None:
            try:
                with transaction.atomic():
                    return GatewayCharge.objects.create(
                        idempotency_key=idempotency_key,
                        method="",
                        amount=0,
                        status=ChargeStatus.VOIDED,
                    )
            except IntegrityError:  # a concurrent charge request arrived first
                record = _locked(idempotency_key)
                assert record is not None
        if record.method == CARD_DOWN:
            raise GatewayUnavailable("the card gateway is unreachable (card_down)")
        if record.status == ChargeStatus.CHARGED:
            _set_status(record, ChargeStatus.REFUNDED)
        elif record.status == ChargeStatus.PENDING:
            _set_status(record, ChargeStatus.VOIDED)
    return record


def slow_seconds() -> float:
    """Return how long card_slow takes to approve."""
    return float(getattr(settings, "PAYMENTS_GATEWAY_SLOW_SECONDS", 3.0))


def answer_delay() -> float:
    """Return how long the gateway waits after charging before it answers."""
    return float(getattr(settings, "PAYMENTS_GATEWAY_ANSWER_DELAY", 0.0))


def _receive(idempotency_key: str, method: str, amount: Decimal) -> GatewayCharge:
    """Count the request against its key's record, creating the record on the first one."""
    with transaction.atomic():
        record = _locked(idempotency_key)
        if record is None:
            try:
                with transaction.atomic():
                    record = GatewayCharge.objects.create(
                        idempotency_key=idempotency_key, method=method, amount=amount
                    )
            except IntegrityError:  # a concurrent first request won
                record = _locked(idempotency_key)
                assert record is not None
        voided_unseen = record.status == ChargeStatus.VOIDED and not record.method
        if not voided_unseen and (record.method != method or record.amount != amount):
            raise IdempotencyKeyReused(
                f"key {idempotency_key!r} was first used to charge {record.amount} to"
                f" {record.method}, not {amount} to {method}"
            )
        record.attempts += 1
        record.updated_at = timezone.now()
        record.save(update_fields=["attempts", "updated_at"])
    return record


def _process(record: GatewayCharge) -> GatewayCharge:
    """Decide a PENDING charge according to its test card."""
    if record.method not in METHODS:
        return _finish(record, ChargeStatus.DECLINED)
    if record.method == CARD_DECLINED:
        return _finish(record, ChargeStatus.DECLINED)
    if record.method == CARD_FLAKY and record.attempts <= FLAKY_FAILURES:
        raise GatewayUnavailable(
            f"the card gateway timed out (card_flaky, request {record.attempts} of this key)"
        )
    if record.method == CARD_SLOW:
        time.sleep(slow_seconds())
    return _finish(record, ChargeStatus.CHARGED)


def _finish(record: GatewayCharge, status: str) -> GatewayCharge:
    """Settle a PENDING charge, unless a refund voided it meanwhile."""
    with transaction.atomic():
        record = GatewayCharge.objects.select_for_update().get(pk=record.pk)
        if record.status == ChargeStatus.PENDING:
            if status == ChargeStatus.CHARGED:
                record.reference = f"ch_{secrets.token_hex(12)}"
            _set_status(record, status)
    return record


def _locked(idempotency_key: str) -> GatewayCharge | None:
    return GatewayCharge.objects.select_for_update().filter(idempotency_key=idempotency_key).first()


def _set_status(record: GatewayCharge, status: str) -> None:
    record.status = status
    record.updated_at = timezone.now()
    record.save(update_fields=["status", "reference", "updated_at"])


def _decline_message(method: str) -> str:
    if method == CARD_DECLINED:
        return "the card was declined by its issuer (card_declined)"
    test_cards = ", ".join(m for m in METHODS if m != CREDIT_CARD)
    return f"unknown payment method {method!r}; use {CREDIT_CARD} or a test card: {test_cards}"
