"""HTTP steps against a real local payments service, on in-process workers and the fake clock."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
from http_step_sagas import payment_saga
from testkit import drain, fresh, work

from bpm import clock, outbound, services
from bpm.models import EventType, SagaStatus, StepRun, StepStatus

pytestmark = pytest.mark.django_db(transaction=True)


def start(definition, customer="alice", fee_customer="bob", order_id="A&B/1"):
    saga_input = {
        "customer": customer,
        "fee_customer": fee_customer,
        "amount": 12,
        "order_id": order_id,
    }
    return services.saga_start(definition=definition.name, input=saga_input, actor="test")


def run_of(saga, step, direction="FORWARD"):
    return StepRun.objects.filter(saga=saga, step__name=step, direction=direction).latest("id")


def test_it_charges_with_the_runs_key_the_secret_and_the_filled_templates(payments, the_world):
    saga = start(payment_saga(payments))
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED
    charge = run_of(saga, "charge")
    assert charge.output == {"payment_id": 1, "amount": 12}
    assert fresh(saga).context["charge"] == {"payment_id": 1, "amount": 12}
    first = payments.requests[0]
    assert first["path"] == "/payments?order=A%26B%2F1"
    assert first["body"] == {"customer": "alice", "amount": 12}
    assert first["headers"]["Idempotency-Key"] == charge.idempotency_key
    assert first["headers"]["Authorization"] == "Bearer s3cret-payments-token"
    assert len(payments.charges) == 2


def test_a_crash_between_the_effect_and_the_reply_charges_once(payments, the_world):
    payments.will("drop_after_effect")
    saga = start(payment_saga(payments))
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED
    charge = run_of(saga, "charge")
    assert charge.attempts == 2
    keys = [request["headers"]["Idempotency-Key"] for request in payments.requests[:2]]
    assert keys == [charge.idempotency_key] * 2
    assert charge.idempotency_key in payments.charges
    assert len(payments.charges) == 2  # the charge once, the fee once
    assert charge.output == {"payment_id": 1, "amount": 12}


@pytest.mark.parametrize("as_date", [False, True])
def test_a_429_waits_for_its_retry_after(payments, the_world, as_date):
    asked = clock.now()
    later = asked + timedelta(seconds=20)
    payments.will("429:" + (format_datetime(later, usegmt=True) if as_date else "20"))
    saga = start(payment_saga(payments))
    work()
    elapsed = (clock.now() - asked).total_seconds()
    charge = run_of(saga, "charge")
    assert charge.status == StepStatus.PENDING
    failed = charge.events.get(type=EventType.ATTEMPT_FAILED)
    if as_date:
        # A date counts from when the answer came: up to `elapsed` (and the date's truncated
        # fraction of a second) less than 20 s after this test named it.
        assert 20 - elapsed - 1 <= failed.data["retry_after"] <= 20
    else:
        assert failed.data["retry_after"] == 20
    waited = (charge.due_at - failed.at).total_seconds()
    assert waited == pytest.approx(failed.data["retry_after"], abs=1)
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert len(payments.charges) == 2


def test_a_retry_after_longer_than_the_max_backoff_is_capped(payments, the_world):
    payments.will("429:3600")
    saga = start(payment_saga(payments))
    work()
    charge = run_of(saga, "charge")
    failed = charge.events.get(type=EventType.ATTEMPT_FAILED)
    assert (charge.due_at - failed.at).total_seconds() == pytest.approx(30, abs=1)


def test_5xx_answers_are_retried_by_the_policy(payments, the_world):
    payments.will("503", "503")
    saga = start(payment_saga(payments))
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert run_of(saga, "charge").attempts == 3


def test_a_4xx_refusal_compensates_through_the_http_compensation(payments, the_world):
    saga = start(payment_saga(payments), fee_customer="blocked")
    drain()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    fee = run_of(saga, "charge_fee")
    assert fee.status == StepStatus.FAILED
    assert fee.output["code"] == "CARD_DECLINED"
    assert fee.last_error == "the card was declined"
    charge_key = run_of(saga, "charge").idempotency_key
    refund = run_of(saga, "charge", "COMPENSATION")
    assert refund.output == {"refunded": True}
    assert payments.refunded == {charge_key}
    refund_request = payments.requests[-1]
    assert refund_request["headers"]["Idempotency-Key"] == refund.idempotency_key
    assert refund_request["body"] == {"payment_key": charge_key}


def test_a_redirect_is_not_followed_but_refused(payments, the_world):
    payments.will("redirect:http://169.254.169.254/latest/meta-data/")
    saga = start(payment_saga(payments))
    drain()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    charge = run_of(saga, "charge")
    assert charge.output["code"] == "HTTP_REDIRECT"
    assert "169.254.169.254" in charge.last_error
    assert len(payments.requests) == 1


def test_a_host_resolving_to_the_metadata_address_is_refused(payments, settings, monkeypatch):
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["169.254.169.254"])
    payments_host = payments.url.replace("127.0.0.1", "payments.example")
    with pytest.raises(outbound.UrlRefused, match=r"'payments\.example' .* is not listed"):
        outbound.post_json(payments_host + "/payments", body=b"{}", headers={}, timeout=2)
    settings.BPM_HTTP_ALLOWED_HOSTS = ["127.0.0.1", "payments.example"]
    with pytest.raises(outbound.UrlRefused, match=r"169\.254\.169\.254 is not public"):
        outbound.post_json(payments_host + "/payments", body=b"{}", headers={}, timeout=2)
    assert payments.requests == []


def test_a_missing_reference_refuses_without_calling(payments, the_world):
    definition = payment_saga(payments)
    saga = services.saga_start(
        definition=definition.name,
        input={"customer": "alice", "fee_customer": "bob", "amount": 1},
        actor="test",
    )
    drain()
    charge = run_of(saga, "charge")
    assert charge.output["code"] == "HTTP_REFERENCE_MISSING"
    assert "input/order_id" in charge.last_error
    assert payments.requests == []


def test_a_step_whose_host_resolves_to_the_metadata_address_is_refused_and_compensated(
    payments, settings, monkeypatch, the_world
):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["127.0.0.1", "payments.example"]
    service = type("Renamed", (), {"url": payments.url.replace("127.0.0.1", "payments.example")})
    definition = payment_saga(service, name="http_metadata")
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["169.254.169.254"])
    saga = start(definition)
    drain()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    charge = run_of(saga, "charge")
    assert (charge.output["code"], charge.attempts) == ("URL_REFUSED", 1)
    assert "169.254.169.254 is not public" in charge.last_error
    assert payments.requests == []
