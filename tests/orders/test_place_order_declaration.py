"""The place_order saga as declared in code: its steps, its input schema and its backoffs."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from jsonschema import Draft202012Validator

from bpm import definitions, registry
from bpm.declarations import COMPENSATABLE, PIVOT, RETRIABLE, validate_steps
from orders.sagas import PLACE_ORDER, backoff_scale_from_settings, place_order

VALID_INPUT = {
    "customer_id": 1,
    "products": [1, 2],
    "total": "12.50",
    "payment_method": "credit_card",
}


def schema_errors(value: object) -> list[str]:
    validator = Draft202012Validator(PLACE_ORDER.input_schema)
    return [error.message for error in validator.iter_errors(value)]


def test_it_is_registered_under_its_name():
    assert [saga.name for saga in registry.declarations()].count("place_order") == 1
    assert PLACE_ORDER.title == "Place an order"


def test_it_is_a_saga_the_engine_accepts():
    validate_steps(list(PLACE_ORDER.steps))


def test_it_creates_pays_approves_then_confirms():
    steps = [(step.name, step.action, step.compensation, step.kind) for step in PLACE_ORDER.steps]
    assert steps == [
        ("create_order", "orders.create_order", "orders.reject_order", COMPENSATABLE),
        ("take_payment", "payments.take_payment", "payments.refund_payment", COMPENSATABLE),
        ("approve_order", "orders.approve_order", "", PIVOT),
        ("send_confirmation", "notifications.send_confirmation", "", RETRIABLE),
    ]


def test_its_retry_policies_are_the_documented_ones():
    payment, confirmation = PLACE_ORDER.steps[1], PLACE_ORDER.steps[3]
    assert (payment.retry.max_attempts, payment.retry.initial_backoff) == (4, 0.5)
    assert (payment.retry.max_backoff, payment.retry.jitter, payment.timeout) == (10, 0.2, 10)
    assert (confirmation.retry.max_attempts, confirmation.retry.initial_backoff) == (5, 1)
    assert confirmation.retry.max_backoff == 30


def test_a_backoff_scale_shrinks_every_wait_but_not_the_attempts():
    scaled = place_order(backoff_scale=0.01)
    payment = scaled.steps[1]
    assert payment.retry.initial_backoff == pytest.approx(0.005)
    assert payment.retry.max_backoff == pytest.approx(0.1)
    assert payment.retry.max_attempts == 4
    validate_steps(list(scaled.steps))
    assert scaled.fingerprint() != place_order().fingerprint()


@pytest.mark.parametrize("scale", [0, -1, "fast", True])
def test_it_refuses_a_backoff_scale_that_is_not_a_positive_number(settings, scale):
    settings.PLACE_ORDER_BACKOFF_SCALE = scale
    with pytest.raises(ImproperlyConfigured, match="PLACE_ORDER_BACKOFF_SCALE"):
        backoff_scale_from_settings()


def test_the_backoff_scale_is_read_from_settings(settings):
    settings.PLACE_ORDER_BACKOFF_SCALE = 0.25
    assert backoff_scale_from_settings() == 0.25


def test_its_input_schema_accepts_an_order():
    assert schema_errors(VALID_INPUT) == []


@pytest.mark.parametrize(
    "change",
    [
        {"customer_id": 0},
        {"customer_id": "1"},
        {"products": []},
        {"products": [0]},
        {"total": "0.00"},
        {"total": "12.345"},
        {"total": 12.5},
        {"total": "12345678901"},
        {"payment_method": 3},
        {"notification": {"message": "Thanks!"}},
        {"email": "me@example.com"},
        {"coupon": "FREE"},
    ],
    ids=str,
)
def test_its_input_schema_refuses_a_malformed_order(change):
    assert schema_errors({**VALID_INPUT, **change})


@pytest.mark.parametrize("missing", ["customer_id", "products", "total", "payment_method"])
def test_its_input_schema_requires_the_order_fields(missing):
    value = {key: item for key, item in VALID_INPUT.items() if key != missing}
    assert any(missing in message for message in schema_errors(value))


@pytest.mark.django_db
def test_it_syncs_into_a_definition_version():
    definition, _ = definitions.sync_declaration(PLACE_ORDER)
    assert definition.name == "place_order"
    assert [step.name for step in definition.steps.order_by("position")] == [
        "create_order",
        "take_payment",
        "approve_order",
        "send_confirmation",
    ]
