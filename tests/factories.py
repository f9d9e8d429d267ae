"""factory_boy factories for the participant apps, and a step context for calling handlers."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth.models import Group, User
from factory.django import DjangoModelFactory

from bpm.context import StepContext
from notifications.models import Notification
from orders.models import Order
from payments.models import Customer, Payment


class UserFactory(DjangoModelFactory):
    """A staff user; `UserFactory(groups=["operators"])` puts them in the named groups."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    is_staff = True
    password = factory.django.Password("secret-password")

    @factory.post_generation
    def groups(self, create: bool, names: list[str] | None, **kwargs: Any) -> None:
        if create and names:
            self.groups.add(*Group.objects.filter(name__in=names))


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    credit_limit = Decimal("100.00")


class PaymentFactory(DjangoModelFactory):
    class Meta:
        model = Payment

    customer = factory.SubFactory(CustomerFactory)
    order_id = factory.Sequence(lambda n: n + 1)
    amount = Decimal("10.00")
    method = "credit_card"
    idempotency_key = factory.Sequence(lambda n: f"payment-key-{n}")
    gateway_reference = factory.Sequence(lambda n: f"ch_test{n:06d}")


class OrderFactory(DjangoModelFactory):
    class Meta:
        model = Order

    customer_id = 1
    product_ids = factory.LazyFunction(lambda: [1, 2])
    total = Decimal("10.00")
    saga_id = factory.LazyFunction(uuid.uuid4)


class NotificationFactory(DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.Sequence(lambda n: f"reader{n}@example.com")
    subject = "Hello"
    body = "A message."
    idempotency_key = factory.Sequence(lambda n: f"notification-key-{n}")


def step_context(
    *,
    step: str,
    saga_id: uuid.UUID | None = None,
    direction: str = "FORWARD",
    attempt: int = 1,
    input: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    failure: dict[str, Any] | None = None,
) -> StepContext:
    """Return what the engine would hand a handler for this step of a saga."""
    saga_id = saga_id or uuid.uuid4()
    return StepContext(
        saga_id=saga_id,
        step=step,
        direction=direction,
        attempt=attempt,
        input=input or {},
        outputs=outputs or {},
        idempotency_key=f"{saga_id}:{step}:{direction.lower()}",
        failure=failure,
    )
