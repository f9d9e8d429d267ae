"""Sending a notification: through Django's email framework, at least once, never twice per key."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ValidationError

from notifications import services
from notifications.mail import MailBounced
from notifications.models import Notification, NotificationStatus

pytestmark = pytest.mark.django_db


def send(recipient: str = "ada@example.com", key: str = "key-1", **kwargs):
    return services.notification_send(
        recipient=recipient,
        subject="Your order",
        body="It is on its way.",
        idempotency_key=key,
        **kwargs,
    )


def test_it_sends_one_email_and_records_it_as_sent(mailoutbox, settings):
    saga_id = uuid.uuid4()
    notification = send(saga_id=saga_id)
    [message] = mailoutbox
    assert message.to == ["ada@example.com"]
    assert (message.subject, message.body) == ("Your order", "It is on its way.")
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.extra_headers["X-Idempotency-Key"] == "key-1"
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SENT
    assert (notification.saga_id, notification.idempotency_key) == (saga_id, "key-1")
    assert notification.sent_at is not None


def test_a_key_already_sent_returns_its_notification_without_sending_again(mailoutbox):
    first = send()
    assert send().pk == first.pk
    assert len(mailoutbox) == 1
    assert Notification.objects.count() == 1


def test_different_keys_send_different_messages(mailoutbox):
    send(key="key-1")
    send(key="key-2")
    assert len(mailoutbox) == 2


def test_an_address_at_bounce_invalid_bounces_every_time(mailoutbox):
    for _ in range(3):
        with pytest.raises(MailBounced, match=r"refused carol@bounce\.invalid"):
            send(recipient="carol@bounce.invalid")
    assert mailoutbox == []
    assert not Notification.objects.exists()


def test_it_refuses_a_malformed_address_before_sending(mailoutbox):
    with pytest.raises(ValidationError) as caught:
        send(recipient="not an address")
    assert "recipient" in caught.value.message_dict
    assert mailoutbox == []
