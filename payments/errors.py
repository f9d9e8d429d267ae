"""Why the payments service refuses a request.

Each refusal is also the engine's NotFound or Conflict, which the API answers with 404 or 409.
"""

from __future__ import annotations

from django.db import models

from bpm.errors import Conflict, NotFound, SagaError


class RefusalCode(models.TextChoices):
    UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER", "unknown customer"
    INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT", "insufficient credit"
    PAYMENT_DECLINED = "PAYMENT_DECLINED", "payment declined"


class PaymentError(SagaError):
    """Base for every error of the payments service."""


class PaymentRefused(PaymentError, Conflict):
    """A business refusal: asking again will not change the answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = RefusalCode(code)
        self.message = message


class CustomerNotFound(PaymentError, NotFound):
    """No customer has that id."""


class PaymentConflict(PaymentError, Conflict):
    """The idempotency key was already used for a different payment."""


class PaymentVoided(PaymentError, Conflict):
    """A refund voided the key before any payment was taken under it; the take comes too late."""
