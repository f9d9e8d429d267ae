"""The notifications step handlers, called as the engine calls them."""

from __future__ import annotations

import pytest
from factories import step_context

from bpm import registry
from notifications.mail import MailBounced
from notifications.models import Notification, NotificationStatus
from notifications.steps import retract_notification, send_confirmation

pytestmark = pytest.mark.django_db

OUTPUTS = {
    "create_order": {"order_id": 42},
    "take_payment": {
        "payment_id": 3,
        "amount": "12.50",
        "customer_email": "ada@example.com",
        "customer_name": "Ada",
    },
}
ORDER_INPUT = {"customer_id": 1, "products": [1], "total": "12.50", "payment_method": "x"}


def confirm_ctx(order_input=None, outputs=None, **kwargs):
    return step_context(
        step="send_confirmation",
        input=ORDER_INPUT if order_input is None else order_input,
        outputs=OUTPUTS if outputs is None else outputs,
        **kwargs,
    )


def test_the_handlers_are_at_least_once_not_transactional():
    for name in ("notifications.send_confirmation", "notifications.retract_notification"):
        assert not registry.get_handler(name).transactional


def test_it_confirms_to_the_paying_customer_naming_the_order_and_total(mailoutbox):
    ctx = confirm_ctx()
    output = send_confirmation(ctx)
    notification = Notification.objects.get()
    assert output == {"notification_id": notification.pk}
    [message] = mailoutbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Your order 42 is confirmed"
    assert "Hello Ada" in message.body
    assert "order 42" in message.body and "12.50" in message.body
    assert (notification.saga_id, notification.idempotency_key) == (
        ctx.saga_id,
        ctx.idempotency_key,
    )


def test_an_email_or_message_in_an_older_input_is_ignored(mailoutbox):
    # Inputs of place_order v1 could name both: a client's token then relayed any text anywhere.
    order_input = {**ORDER_INPUT, "email": "bob@example.com", "notification": {"message": "Hi!"}}
    send_confirmation(confirm_ctx(order_input))
    [message] = mailoutbox
    assert message.to == ["ada@example.com"]
    assert "Hi!" not in message.body and "Hello Ada" in message.body


def test_a_confirmation_delivered_twice_is_sent_once(mailoutbox):
    ctx = confirm_ctx()
    assert send_confirmation(ctx) == send_confirmation(ctx)
    assert len(mailoutbox) == 1


def test_a_bouncing_address_is_a_fault_to_retry(mailoutbox):
    with pytest.raises(MailBounced):
        payment = {**OUTPUTS["take_payment"], "customer_email": "carol@bounce.invalid"}
        send_confirmation(confirm_ctx(outputs={**OUTPUTS, "take_payment": payment}))
    assert not Notification.objects.exists()


def test_a_customer_without_an_address_gets_no_mail_and_the_step_succeeds(mailoutbox):
    payment = {**OUTPUTS["take_payment"], "customer_email": None}
    output = send_confirmation(confirm_ctx(outputs={**OUTPUTS, "take_payment": payment}))
    assert output == {"notification_id": None, "skipped": "the customer has no email address"}
    assert not mailoutbox


def test_without_anywhere_to_write_it_says_so(mailoutbox):
    with pytest.raises(ValueError, match="nowhere to send the confirmation"):
        send_confirmation(confirm_ctx(outputs={}))


def test_retract_notification_retracts_what_the_action_sent(mailoutbox):
    sent = confirm_ctx()
    notification_id = send_confirmation(sent)["notification_id"]
    undo = step_context(
        step="send_confirmation",
        saga_id=sent.saga_id,
        direction="COMPENSATION",
        failure={"step": "x", "kind": "REFUSED", "code": "NO", "message": "out of stock"},
    )
    output = retract_notification(undo)
    correction = Notification.objects.get(correction_of_id=notification_id)
    assert output == {"notification_id": notification_id, "correction_id": correction.pk}
    assert Notification.objects.get(pk=notification_id).status == NotificationStatus.RETRACTED
    assert "out of stock" in mailoutbox[-1].body
    assert retract_notification(undo) == output
    assert len(mailoutbox) == 2


def test_retract_notification_without_a_notification_does_nothing(mailoutbox):
    undo = step_context(step="send_confirmation", direction="COMPENSATION")
    assert retract_notification(undo) == {}
    assert mailoutbox == []
