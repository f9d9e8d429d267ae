"""review_large_order: place_order with a fraud check, a warehouse signal and a person's review.

The demo starts it for orders at or above REVIEW_THRESHOLD (demo_trickle); a client may start it
through the API like any saga. It waits three ways (docs/processes.md, "Waits"):

- `fraud_check`: a task token handed to the demo's fraud desk, which answers it;
- `warehouse_reserved`: a signal the warehouse sends (POST /api/v1/sagas/<id>/signals/...);
- `review`: a human task for the "reviewers" group, before the payment is taken.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bpm import registry
from bpm.declarations import (
    COMPENSATABLE,
    PIVOT,
    RETRIABLE,
    RetryPolicy,
    SagaDeclaration,
    StepDeclaration,
)
from orders import order_input

NAME = "review_large_order"
REVIEWERS = "reviewers"
REVIEW_THRESHOLD = Decimal("1000.00")
WAREHOUSE_SIGNAL = "warehouse_reserved"

REVIEW_FORM: dict[str, Any] = {
    "type": "object",
    "title": "Review a large order",
    "properties": {
        "risk": {
            "type": "string",
            "title": "Risk",
            "enum": ["low", "medium", "high"],
            "description": "your judgement after looking at the customer and the order",
        },
        "note": {"type": "string", "title": "Note", "maxLength": 500},
        "call_customer": {"type": "boolean", "title": "Call the customer before shipping"},
    },
    "required": ["risk"],
    "additionalProperties": False,
}

DESCRIPTION = (
    "For orders at or above the review threshold: creates the PENDING order, has the fraud desk"
    " score it (a task token), waits for the warehouse to reserve the goods (a signal), waits"
    " for a reviewer's approval (a human task for the reviewers group), then takes the payment,"
    " approves the order and mails a confirmation. A fraud refusal, a reviewer's rejection or a"
    " wait that times out rejects the order."
)

REVIEW_LARGE_ORDER = registry.declare(
    SagaDeclaration(
        name=NAME,
        title="Review and place a large order",
        description=DESCRIPTION,
        input_schema=order_input.SCHEMA,
        steps=(
            StepDeclaration(
                name="create_order",
                action="orders.create_order",
                compensation="orders.reject_order",
                kind=COMPENSATABLE,
            ),
            StepDeclaration(
                name="fraud_check",
                action="demo.screen_for_fraud",
                retry=RetryPolicy(max_attempts=3, initial_backoff=1, max_backoff=10),
                wait={"task_token": {}, "timeout": 300},
            ),
            StepDeclaration(
                name="warehouse",
                action="",
                wait={"signal": WAREHOUSE_SIGNAL, "timeout": 3600},
            ),
            StepDeclaration(
                name="review",
                action="",
                wait={
                    "task": {
                        "group": REVIEWERS,
                        "title": "Review a large order",
                        "form": REVIEW_FORM,
                    },
                    "timeout": 3 * 24 * 3600,
                },
            ),
            StepDeclaration(
                name="take_payment",
                action="payments.take_payment",
                compensation="payments.refund_payment",
                retry=RetryPolicy(max_attempts=4, initial_backoff=0.5, max_backoff=10, jitter=0.2),
                timeout=10,
            ),
            StepDeclaration(name="approve_order", action="orders.approve_order", kind=PIVOT),
            StepDeclaration(
                name="send_confirmation",
                action="notifications.send_confirmation",
                kind=RETRIABLE,
                retry=RetryPolicy(max_attempts=5, initial_backoff=1, max_backoff=30, jitter=0.2),
            ),
        ),
    )
)
