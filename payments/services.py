"""Customer accounts and payments: credit is reserved by charging the card through the gateway.

Available credit is the credit limit less the amounts of the customer's RESERVED payments.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum, Value
from django.db.models.functions import Lower

from bpm import ownership
from payments import gateway
from payments.errors import (
    CustomerNotFound,
    PaymentConflict,
    PaymentRefused,
    PaymentVoided,
    RefusalCode,
)
from payments.models import (
    EMAIL_TAKEN,
    Customer,
    KeyOutcome,
    Payment,
    PaymentKey,
    PaymentStatus,
)

CENT = Decimal("0.01")
# Characters that draw nothing: controls, formats (zero-width spaces and joiners), separators,
# marks that only decorate another character, and the fillers that are letters in name only.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")
# Amounts hold 12 digits, 2 of them after the point.
MAX_AMOUNT = Decimal(10) ** 10

# --- customers --------------------------------------------------------------------------------


def customer_create(
    *,
    name: str,
    credit_limit: Decimal | int | str,
    email: str | None = None,
    owner: Any = None,
) -> Customer:
    """Open a customer account; ValidationError says which field is wrong and why.

    The email address is optional; without one, confirmations have nowhere to go and are skipped.
    `owner` is the client's user that opens it (bpm.ownership): only it, and the holders of
    payments.view_customer, see the account and may place orders for it.
    """
    customer = Customer(
        name=name.strip(),
        email=normalised_email(email),
        credit_limit=_decimal(credit_limit, field="credit_limit"),
        owner=owner,
    )
    # The constraints are checked below, so that a taken address is reported on its field.
    customer.full_clean(validate_constraints=False)
    if not has_visible_character(customer.name):
        raise ValidationError({"name": "must hold a visible character, not only blank ones"})
    if customer.email is not None and _email_taken(customer.email):
        raise _taken()
    customer.credit_limit = customer.credit_limit.quantize(CENT)
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError:
        # Another request opened an account with this email between the check and the save.
        raise _taken() from None
    return customer


def normalised_email(email: str | None) -> str | None:
    """Return the address as stored: trimmed, its domain in lower case; None for no address."""
    email = (email or "").strip()
    if not email:
        return None
    local, at, domain = email.rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else email


def has_visible_character(text: str) -> bool:
    """Return whether `text` draws something: a name of zero-width spaces names nobody."""
    return any(
        unicodedata.category(char) not in INVISIBLE_CATEGORIES and char not in INVISIBLE_LETTERS
        for char in text
    )


def customer_set_credit_limit(*, customer_id: int, credit_limit: Decimal | int | str) -> Customer:
    """Change the customer's credit limit (reserved payments stay reserved)."""
    with transaction.atomic():
        customer = _locked_customer(customer_id)
        if customer is None:
            raise CustomerNotFound(f"no customer with id {customer_id}")
        customer.credit_limit = _decimal(credit_limit, field="credit_limit")
        customer.full_clean()
        customer.credit_limit = customer.credit_limit.quantize(CENT)
        customer.save(update_fields=["credit_limit"])
    return customer


def customer_get(*, customer_id: int, user: Any = None) -> Customer:
    """Return the customer with this id as `user` sees it, or raise CustomerNotFound.

    Without a user (a trusted caller on the server) every customer is found; a user finds only
    the ones bpm.ownership shows it, and the others are as missing as ids that name nobody.
    """
    try:
        return customers_visible_to(user=user).get(pk=customer_id)
    except Customer.DoesNotExist:
        raise CustomerNotFound(f"no customer with id {customer_id}") from None


def customers_visible_to(*, user: Any) -> QuerySet[Customer]:
    """Return the customers `user` may see: every one, or the ones it opened."""
    return ownership.visible_to(user, Customer.objects.all())


def customer_find(*, email: str) -> Customer | None:
    """Return the customer with this email address, if there is one."""
    return Customer.objects.filter(email__iexact=email.strip()).first()


def customer_available_credit(*, customer_id: int) -> Decimal:
    """Return the credit limit less the customer's reserved payments."""
    return _available_credit(customer_get(customer_id=customer_id))


# --- payments ---------------------------------------------------------------------------------


def payment_take(
    *,
    customer_id: int,
    order_id: int,
    amount: Decimal | str,
    method: str,
    idempotency_key: str,
    owner_id: int | None = None,
) -> Payment:
    """Charge the card and reserve `amount` against the customer's credit, once per key.

    A repeated key returns the payment already taken, without calling the gateway again.
    `owner_id` is the user the order is placed for (the saga's owner; None for a trusted caller):
    a customer that user may not use is refused exactly as a customer that does not exist.
    Raises PaymentRefused (UNKNOWN_CUSTOMER, INSUFFICIENT_CREDIT, PAYMENT_DECLINED) for a business
    refusal; PaymentVoided when a refund for the key ran first (the take arrives too late);
    gateway.GatewayUnavailable and anything else are faults worth retrying.

    A refusal leaves nothing behind: an earlier attempt under the same key may have charged the
    card and died before recording its payment, so before refusing, the take voids the key here
    and gives back at the gateway whatever the key holds (see docs/engine.md, "Writing a
    participant"). When the gateway cannot be reached for that, the refusal is not safe to make
    and the take fails with GatewayUnavailable, to be retried.
    """
    amount = _positive_amount(amount)
    asked = (customer_id, order_id, amount, method)
    payment = payment_for_key(idempotency_key=idempotency_key)
    if payment is not None:
        return _same(payment, asked)
    decided = PaymentKey.objects.filter(idempotency_key=idempotency_key).first()
    if decided is not None and decided.outcome == KeyOutcome.VOIDED:
        return _refuse(idempotency_key, None, asked)
    with transaction.atomic():
        customer = _usable(_locked_customer(customer_id), owner_id)
        refusal = _credit_refusal(customer, customer_id, amount)
    if refusal is not None:
        return _refuse(idempotency_key, refusal, asked)
    try:
        charge = gateway.charge(idempotency_key=idempotency_key, method=method, amount=amount)
    except gateway.CardDeclined as exc:
        return _refuse(
            idempotency_key, PaymentRefused(RefusalCode.PAYMENT_DECLINED, str(exc)), asked
        )
    # The credit may have been taken by a concurrent payment while the gateway worked, and the
    # key voided by a refund that ran meanwhile.
    with transaction.atomic():
        customer = _usable(_locked_customer(customer_id), owner_id)
        payment = payment_for_key(idempotency_key=idempotency_key)
        if payment is None:
            refusal = _credit_refusal(customer, customer_id, amount)
        taking = payment is None and refusal is None
        if taking and _decide(idempotency_key, KeyOutcome.TAKEN).outcome == KeyOutcome.TAKEN:
            assert customer is not None
            payment = Payment.objects.create(
                customer=customer,
                order_id=order_id,
                amount=amount,
                method=method,
                idempotency_key=idempotency_key,
                gateway_reference=charge.reference,
            )
    if payment is not None:
        return _same(payment, asked)
    return _refuse(idempotency_key, refusal, asked)


def payment_refund(*, idempotency_key: str) -> Payment | None:
    """Refund the payment taken under the key; None when no payment was taken (nothing to undo).

    Refunding twice is harmless. When no payment was recorded, the key is voided first, so a
    take still in flight or delivered later refuses instead of reserving credit, and then the
    gateway gives back whatever it holds under the key: a charge whose attempt died before
    recording its payment is refunded, one still in flight is voided, and a key it never saw is
    voided so that a charge arriving later is refused.
    """
    payment = payment_for_key(idempotency_key=idempotency_key)
    if payment is None:
        if _decide(idempotency_key, KeyOutcome.VOIDED).outcome == KeyOutcome.VOIDED:
            gateway.refund(idempotency_key=idempotency_key)
            return None
        # A take recorded its payment meanwhile: refund that.
        payment = payment_for_key(idempotency_key=idempotency_key)
        assert payment is not None
    if payment.status == PaymentStatus.REFUNDED:
        return payment
    gateway.refund(idempotency_key=idempotency_key)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status == PaymentStatus.RESERVED:
            payment.refund()
            payment.save()
    return payment


def payment_for_key(*, idempotency_key: str) -> Payment | None:
    """Return the payment taken under this idempotency key, if any."""
    payments = Payment.objects.select_related("customer")
    return payments.filter(idempotency_key=idempotency_key).first()


# --- helpers ----------------------------------------------------------------------------------


def _decide(
    idempotency_key: str, outcome: str, refusal: PaymentRefused | None = None
) -> PaymentKey:
    """Record what became of the key unless something already has; return the key's decision."""
    try:
        with transaction.atomic():
            return PaymentKey.objects.create(
                idempotency_key=idempotency_key,
                outcome=outcome,
                reason=refusal.code if refusal else "",
                message=refusal.message if refusal else "",
            )
    except IntegrityError:
        return PaymentKey.objects.get(idempotency_key=idempotency_key)


def _refuse(
    idempotency_key: str,
    refusal: PaymentRefused | None,
    asked: tuple[int, int, Decimal, str],
) -> Payment:
    """Void the key, give back at the gateway whatever it holds, then raise why it was voided.

    The key is voided before the gateway is asked, so an attempt still in flight cannot record a
    payment afterwards; the gateway's refund also voids a key it has not seen, so such an attempt
    cannot charge afterwards either. Returns the payment instead when another delivery of the
    same take recorded it first: then the key was taken, not refused.
    """
    decided = _decide(idempotency_key, KeyOutcome.VOIDED, refusal)
    if decided.outcome == KeyOutcome.TAKEN:
        payment = payment_for_key(idempotency_key=idempotency_key)
        assert payment is not None
        return _same(payment, asked)
    gateway.refund(idempotency_key=idempotency_key)
    if decided.reason:
        raise PaymentRefused(decided.reason, decided.message)
    raise PaymentVoided(
        f"the payment under key {idempotency_key!r} was refunded before it was taken;"
        " it will not be taken now"
    )


def _email_taken(email: str) -> bool:
    """Return whether a customer has this address in any case (as the unique index compares)."""
    folded = Customer.objects.alias(folded=Lower("email"))
    return folded.filter(folded=Lower(Value(email))).exists()


def _taken() -> ValidationError:
    return ValidationError({"email": ValidationError(EMAIL_TAKEN, code="unique")})


def _locked_customer(customer_id: int) -> Customer | None:
    return Customer.objects.select_for_update().filter(pk=customer_id).first()


def _usable(customer: Customer | None, owner_id: int | None) -> Customer | None:
    """Return the customer if the user `owner_id` may charge it, else None (as if missing)."""
    if customer is None or not ownership.may_use(owner_id, customer):
        return None
    return customer


def _available_credit(customer: Customer) -> Decimal:
    reserved = Payment.objects.filter(customer=customer, status=PaymentStatus.RESERVED)
    total = reserved.aggregate(total=Sum("amount"))["total"]
    return customer.credit_limit - (total or Decimal(0))


def _credit_refusal(
    customer: Customer | None, customer_id: int, amount: Decimal
) -> PaymentRefused | None:
    """Return why the customer cannot pay `amount` now, or None if they can."""
    if customer is None:
        return PaymentRefused(RefusalCode.UNKNOWN_CUSTOMER, f"no customer with id {customer_id}")
    available = _available_credit(customer)
    if amount > available:
        return PaymentRefused(
            RefusalCode.INSUFFICIENT_CREDIT,
            f"customer {customer.pk} has {available} of credit available, less than {amount}",
        )
    return None


def _same(payment: Payment, asked: tuple[int, int, Decimal, str]) -> Payment:
    """Return the payment taken under the key, if it was taken for what is asked now."""
    taken = (payment.customer_id, payment.order_id, payment.amount, payment.method)
    if asked != taken:
        raise PaymentConflict(
            f"idempotency key {payment.idempotency_key!r} already took payment {payment.pk}"
            f" (customer, order, amount, method = {taken}), not {asked}"
        )
    return payment


def _decimal(value: Decimal | int | str, *, field: str) -> Decimal:
    if isinstance(value, float | bool):
        raise ValidationError({field: "give money as a decimal string or Decimal, not a float"})
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError({field: f"{value!r} is not a decimal number"}) from None


def _positive_amount(value: Decimal | str) -> Decimal:
    amount = _decimal(value, field="amount")
    try:
        cents = amount.quantize(CENT)
    except InvalidOperation:
        cents = None
    if cents is None or cents != amount or not 0 < cents < MAX_AMOUNT:
        message = f"must be positive, below {MAX_AMOUNT}, with up to 2 decimal places: {value!r}"
        raise ValidationError({"amount": message})
    return cents
