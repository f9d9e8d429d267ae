"""Orders and their lifecycle: PENDING is the semantic lock held by the saga that created it."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition


class OrderState(models.TextChoices):
    PENDING = "PENDING", "pending"
    APPROVED = "APPROVED", "approved"
    REJECTED = "REJECTED", "rejected"
    CANCELLED = "CANCELLED", "cancelled"


class RejectionReason(models.TextChoices):
    INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT", "insufficient credit"
    UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER", "unknown customer"
    PAYMENT_DECLINED = "PAYMENT_DECLINED", "payment declined"


class Order(FSMModelMixin, models.Model):
    customer_id = models.PositiveBigIntegerField(db_index=True)
    product_ids = models.JSONField(default=list)
    total = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    state = FSMField(
        max_length=16, choices=OrderState.choices, default=OrderState.PENDING, protected=True
    )
    # Null unless REJECTED: a reason is one of a closed set, so "no reason" is not a string.
    rejection_reason = models.CharField(  # noqa: DJ001
        max_length=32, choices=RejectionReason.choices, null=True, blank=True
    )
    # The saga that created the order: the only one allowed to move it out of PENDING.
    saga_id = models.UUIDField(unique=True)
    # The client's user that created it (bpm.ownership); NULL for rows made by code or commands.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(
                condition=(
                    Q(state=OrderState.REJECTED, rejection_reason__isnull=False)
                    | (~Q(state=OrderState.REJECTED) & Q(rejection_reason__isnull=True))
                ),
                name="order_rejection_reason_iff_rejected",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.state == OrderState.PENDING

    @transition(field=state, source=OrderState.PENDING, target=OrderState.APPROVED)
    def approve(self) -> None:
        self.updated_at = timezone.now()

    @transition(field=state, source=OrderState.PENDING, target=OrderState.REJECTED)
    def reject(self, *, reason: str) -> None:
        self.rejection_reason = RejectionReason(reason)
        self.updated_at = timezone.now()

    @transition(field=state, source=OrderState.PENDING, target=OrderState.CANCELLED)
    def cancel(self) -> None:
        self.updated_at = timezone.now()
