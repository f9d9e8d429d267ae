"""Customer accounts with credit limits, the payments reserved against them, and the ledger of
the simulated card gateway (which stands in for a processor on the other side of a network)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition

EMAIL_TAKEN = "Customer with this Email already exists."


class Customer(models.Model):
    name = models.CharField(max_length=200)
    # Optional: NULL, not "", when absent, so the unique constraint applies only to real addresses.
    # Unique whatever its case (the constraint below): Ada@Example.com is ada@example.com's inbox.
    email = models.EmailField(null=True, blank=True)  # noqa: DJ001
    credit_limit = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(0)]
    )
    # The client's user that created it (bpm.ownership); NULL for rows made by code or commands.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_limit__gte=0), name="customer_credit_limit_not_negative"
            ),
            models.UniqueConstraint(
                Lower("email"),
                name="customer_email_unique_any_case",
                violation_error_code="unique",
                violation_error_message=EMAIL_TAKEN,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


class KeyOutcome(models.TextChoices):
    TAKEN = "TAKEN", "TAKEN"
    VOIDED = "VOIDED", "VOIDED"


class PaymentKey(models.Model):
    """What became of a payment's idempotency key, decided once: taken, or voided first.

    A refund that finds no payment voids the key, so a take delivered late (after its saga has
    compensated) cannot reserve credit that nothing will ever refund; a take that refuses voids it
    too, with its reason, so a retry refuses the same way and an attempt still in flight cannot
    record a payment after the refusal. Both outcomes are written to this one unique column, so a
    concurrent take and refund cannot both win.
    """

    idempotency_key = models.CharField(max_length=200, unique=True)
    outcome = models.CharField(max_length=8, choices=KeyOutcome.choices)
    # Why a take refused (a RefusalCode) when the take voided the key; blank when a refund did.
    reason = models.CharField(max_length=32, blank=True)
    message = models.TextField(blank=True)
    decided_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.idempotency_key} {self.outcome}"


class PaymentStatus(models.TextChoices):
    RESERVED = "RESERVED", "reserved"
    REFUNDED = "REFUNDED", "refunded"


class Payment(FSMModelMixin, models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    order_id = models.PositiveBigIntegerField(db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    method = models.CharField(max_length=32)
    status = FSMField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.RESERVED, protected=True
    )
    # The key of the step that took it: one payment per key, however often the step is delivered.
    idempotency_key = models.CharField(max_length=200, unique=True)
    gateway_reference = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive")
        ]
        indexes = [models.Index(fields=("customer", "status"), name="payment_customer_status")]

    def __str__(self) -> str:
        return f"payment {self.pk} of {self.amount} ({self.status})"

    @transition(field=status, source=PaymentStatus.RESERVED, target=PaymentStatus.REFUNDED)
    def refund(self) -> None:
        self.refunded_at = timezone.now()


class ChargeStatus(models.TextChoices):
    # The request arrived but has not succeeded yet (a transient failure, or still in flight).
    PENDING = "PENDING", "pending"
    CHARGED = "CHARGED", "charged"
    DECLINED = "DECLINED", "declined"
    REFUNDED = "REFUNDED", "refunded"
    # Cancelled before it succeeded: an attempt still in flight can no longer charge.
    VOIDED = "VOIDED", "voided"


class GatewayCharge(models.Model):
    """The card gateway's own ledger: one charge per idempotency key, as a processor keeps it."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    method = models.CharField(max_length=32)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    attempts = models.PositiveIntegerField(default=0, help_text="charge requests received")
    status = models.CharField(
        max_length=16, choices=ChargeStatus.choices, default=ChargeStatus.PENDING
    )
    reference = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"charge {self.reference or self.idempotency_key} ({self.status})"
