"""Keep placing demo orders, a few seconds apart, so a newcomer sees live sagas on every path."""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections

from bpm import definitions, engine, services
from bpm.errors import NotFound
from demo import sagas as demo_sagas
from payments.models import Customer
from payments.services import (
    customer_available_credit,
    customer_create,
    customer_find,
    customer_get,
    customer_set_credit_limit,
)

ACTOR = "demo"
DEFINITION = "place_order"
# No demo customer will ever have this id: the payment is refused as UNKNOWN_CUSTOMER.
UNKNOWN_CUSTOMER_ID = 999_999_999
# A customer whose orders should go through gets this much more credit when theirs runs low.
CREDIT_TOP_UP = Decimal("500.00")
LOW_CREDIT = Decimal("100.00")


@dataclass(frozen=True)
class DemoCustomer:
    name: str
    email: str
    credit_limit: str


ADA = DemoCustomer("Ada", "ada@example.com", "500.00")
GRACE = DemoCustomer("Grace", "grace@example.com", "20.00")
# Every mail to this domain bounces, so her confirmations never go out.
BOUNCER = DemoCustomer("Barbara", "barbara@bounce.invalid", "500.00")
# Places the large orders that review_large_order reviews.
MARGARET = DemoCustomer("Margaret", "margaret@example.com", "100000.00")
DEMO_CUSTOMERS = (ADA, GRACE, BOUNCER, MARGARET)


@dataclass(frozen=True)
class Scenario:
    name: str
    customer: DemoCustomer | None  # None: a customer id nobody has
    total: str
    payment_method: str
    products: tuple[int, ...]
    expect: str
    definition: str = DEFINITION

    @property
    def needs_credit(self) -> bool:
        """Say whether the total fits the customer's limit, so their credit must not run out."""
        return self.customer is not None and Decimal(self.total) <= Decimal(
            self.customer.credit_limit
        )


SCENARIOS = (
    Scenario("approved", ADA, "12.50", "credit_card", (1, 2), "completes: approved and confirmed"),
    Scenario(
        "over_credit_limit",
        GRACE,
        "45.00",
        "credit_card",
        (3,),
        "compensates: rejected, INSUFFICIENT_CREDIT",
    ),
    Scenario(
        "unknown_customer",
        None,
        "9.99",
        "credit_card",
        (4,),
        "compensates: rejected, UNKNOWN_CUSTOMER",
    ),
    Scenario(
        "card_declined",
        ADA,
        "8.00",
        "card_declined",
        (5,),
        "compensates: rejected, PAYMENT_DECLINED",
    ),
    Scenario(
        "card_flaky",
        ADA,
        "5.00",
        "card_flaky",
        (1, 6),
        "retries the payment twice, then completes",
    ),
    Scenario(
        "card_down",
        ADA,
        "7.00",
        "card_down",
        (2,),
        "runs out of payment retries, then compensates: cancelled",
    ),
    Scenario(
        "bouncing_email",
        BOUNCER,
        "3.00",
        "credit_card",
        (7,),
        "gets stuck after the pivot: the confirmation bounces",
    ),
    Scenario(
        "large_order_review",
        MARGARET,
        "1500.00",
        "credit_card",
        (8,),
        "review_large_order: fraud desk passes, warehouse signals; waits for a reviewer",
        definition=demo_sagas.NAME,
    ),
    Scenario(
        "large_order_fraud",
        MARGARET,
        "60000.00",
        "credit_card",
        (9,),
        "review_large_order: the fraud desk refuses its token, compensates",
        definition=demo_sagas.NAME,
    ),
)


class Command(BaseCommand):
    help = (
        "Start a place_order saga every few seconds, cycling through scenarios that exercise"
        " every path: approved, over the credit limit, unknown customer, card declined, flaky"
        " card (retried), card gateway down (compensated) and a bouncing email (stuck after the"
        " pivot). Ctrl-C stops it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=4.0,
            help="seconds between two sagas (default 4)",
        )
        parser.add_argument(
            "--count", type=int, default=None, help="stop after starting this many sagas"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval: float = options["interval"]
        count: int | None = options["count"]
        if interval < 0:
            raise CommandError("--interval must be zero or more seconds")
        if count is not None and count < 1:
            raise CommandError("--count must be at least 1")
        self.ensure_definition()
        customers = {demo: self.ensure_customer(demo) for demo in DEMO_CUSTOMERS}
        stop = threading.Event()
        started = 0
        with stop_on_signals(stop):
            for scenario in itertools.cycle(SCENARIOS):
                if stop.is_set():
                    break
                if self.start(scenario, customers):
                    started += 1
                if count is not None and started >= count:
                    break
                if stop.wait(interval):
                    break
        self.stdout.write(f"Started {started} demo saga{'s' if started != 1 else ''}.")

    def ensure_definition(self) -> None:
        """Sync the declared sagas when place_order has never been synced."""
        try:
            definitions.resolve(DEFINITION)
        except NotFound:
            definitions.sync_all()
            self.stdout.write(f"Synced the saga definitions ({DEFINITION} had none).")

    def ensure_customer(self, demo: DemoCustomer) -> Customer:
        """Return the demo customer, creating them on the first run."""
        customer = customer_find(email=demo.email)
        if customer is None:
            customer = customer_create(
                name=demo.name, email=demo.email, credit_limit=demo.credit_limit
            )
            self.stdout.write(
                f"Created demo customer {customer.name} <{customer.email}> (id {customer.pk},"
                f" credit limit {customer.credit_limit})."
            )
        return customer

    def start(self, scenario: Scenario, customers: dict[DemoCustomer, Customer]) -> bool:
        """Start one saga for the scenario; return whether it started."""
        customer = customers[scenario.customer] if scenario.customer else None
        try:
            if customer is not None and scenario.needs_credit:
                self.keep_credit(customer)
            saga = services.saga_start(
                definition=scenario.definition,
                input={
                    "customer_id": customer.pk if customer else UNKNOWN_CUSTOMER_ID,
                    "products": list(scenario.products),
                    "total": scenario.total,
                    "payment_method": scenario.payment_method,
                },
                actor=ACTOR,
                business_key=f"demo:{scenario.name}",
            )
            if scenario.definition == demo_sagas.NAME:
                # The warehouse reserves at once: the signal is kept until the step waits.
                engine.receive_signal(
                    saga.pk, demo_sagas.WAREHOUSE_SIGNAL, {"reserved_by": "demo"}, actor=ACTOR
                )
        except DatabaseError as exc:
            # A busy or restarting database should not end the demo: try the next one later.
            self.stderr.write(f"Could not start {scenario.name}: {exc}")
            close_old_connections()
            return False
        self.stdout.write(f"{saga.id}  {scenario.name:<18} {scenario.expect}")
        self.stdout.flush()
        return True

    def keep_credit(self, customer: Customer) -> None:
        """Raise the customer's credit limit when reserved payments have nearly used it up."""
        if customer_available_credit(customer_id=customer.pk) >= LOW_CREDIT:
            return
        limit = customer_get(customer_id=customer.pk).credit_limit
        raised = customer_set_credit_limit(
            customer_id=customer.pk, credit_limit=limit + CREDIT_TOP_UP
        )
        self.stdout.write(
            f"Raised {raised.name}'s credit limit to {raised.credit_limit} so the demo keeps"
            " approving orders."
        )


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on SIGINT or SIGTERM while the block runs, then restore the old handlers."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, request_stop) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
