"""Sagas whose steps call the local payments service (tests/http_payments_service.py)."""

from __future__ import annotations

from typing import Any

from http_payments_service import TOKEN, PaymentsService

from bpm import definitions, http_calls
from bpm.declarations import PIVOT, RetryPolicy, SagaDeclaration, StepDeclaration
from bpm.models import SagaDefinition

SECRET = TOKEN.removeprefix("Bearer ")
QUICK = RetryPolicy(max_attempts=4, initial_backoff=1, multiplier=2, max_backoff=30, jitter=0)


def authorized() -> dict[str, Any]:
    return {"Authorization": {"secret": "PAYMENTS_TOKEN", "prefix": "Bearer "}}


def charge_call(service: PaymentsService, customer: str = "/input/customer") -> dict[str, Any]:
    return {
        "method": "POST",
        "url": service.url + "/payments?order={input.order_id}",
        "body": {"customer": {"$ref": customer}, "amount": {"$ref": "/input/amount"}},
        "headers": authorized(),
    }


def refund_call(service: PaymentsService) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": service.url + "/refunds",
        "body": {"payment_key": "{saga.action_idempotency_key}"},
        "headers": authorized(),
    }


def http_step(
    name: str,
    action: dict[str, Any],
    compensation: dict[str, Any] | None = None,
    **options: Any,
) -> StepDeclaration:
    label, call = http_calls.step_action({"http": action})
    undo, undo_call = http_calls.step_action({"http": compensation}) if compensation else ("", None)
    return StepDeclaration(
        name,
        label,
        undo,
        action_http=call,
        compensation_http=undo_call,
        retry=options.pop("retry", QUICK),
        **options,
    )


def payment_saga(service: PaymentsService, name: str = "http_payment") -> SagaDefinition:
    """Charge the customer, then the fee customer (may refuse), then confirm (the pivot)."""
    definition, _ = definitions.sync_declaration(
        SagaDeclaration(
            name=name,
            title="Pay over HTTP",
            steps=(
                http_step("charge", charge_call(service), refund_call(service)),
                http_step("charge_fee", charge_call(service, "/input/fee_customer")),
                StepDeclaration("confirm", "test.remote", kind=PIVOT, retry=QUICK),
            ),
        )
    )
    return definition
