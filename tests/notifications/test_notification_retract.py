"""Retracting a notification: a correction goes out, and the original is marked RETRACTED."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from factories import NotificationFactory

from notifications import services
from notifications.errors import NotificationAlreadyRetracted, NotificationNotFound
from notifications.mail import MailBounced
from notifications.models import Notification, NotificationStatus

pytestmark = pytest.mark.django_db


def test_it_sends_a_correction_and_marks_the_original_retracted(mailoutbox):
    original = NotificationFactory(recipient="ada@example.com", subject="Order 5 confirmed")
    correction = services.notification_retract(
        notification_id=original.pk, reason="The order was cancelled."
    )
    [message] = mailoutbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Correction: Order 5 confirmed"
    assert "Order 5 confirmed" in message.body and "The order was cancelled." in message.body
    assert correction.correction_of == original
    assert correction.status == NotificationStatus.SENT
    original.refresh_from_db()
    assert original.status == NotificationStatus.RETRACTED
    assert original.retracted_at is not None


def test_it_refuses_to_retract_a_notification_twice(mailoutbox):
    original = NotificationFactory()
    services.notification_retract(notification_id=original.pk, reason="wrong total")
    with pytest.raises(NotificationAlreadyRetracted, match=f"notification {original.pk} was"):
        services.notification_retract(notification_id=original.pk, reason="again")
    assert len(mailoutbox) == 1


def test_it_requires_a_reason(mailoutbox):
    original = NotificationFactory()
    with pytest.raises(ValidationError):
        services.notification_retract(notification_id=original.pk, reason="  ")
    assert mailoutbox == []


def test_it_says_when_the_notification_does_not_exist():
    with pytest.raises(NotificationNotFound, match="no notification with id 404"):
        services.notification_retract(notification_id=404, reason="gone")


def test_a_retraction_interrupted_after_its_correction_went_out_sends_no_second_one(mailoutbox):
    original = NotificationFactory()
    earlier = NotificationFactory(
        idempotency_key=f"retraction-of:{original.pk}", correction_of=original
    )
    correction = services.notification_retract(notification_id=original.pk, reason="wrong")
    assert correction == earlier
    assert mailoutbox == []
    original.refresh_from_db()
    assert original.status == NotificationStatus.RETRACTED


def test_a_correction_that_bounces_leaves_the_original_sent(mailoutbox):
    original = NotificationFactory(recipient="carol@bounce.invalid")
    with pytest.raises(MailBounced):
        services.notification_retract(notification_id=original.pk, reason="wrong")
    original.refresh_from_db()
    assert original.status == NotificationStatus.SENT
    assert Notification.objects.count() == 1
