"""Keep placing demo orders, a few seconds apart, so a newcomer sees live sagas on every path."""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections

from bpm import clock, definitions, engine, services
from bpm.errors import NotFound
from bpm.models import ACTIVE_STATUSES, SagaInstance, SagaStatus
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
# A scenario that leaves its sagas stuck starts no more while this many of them are still stuck:
# the demo shows every kind of trouble without piling up identical rows.
STUCK_CAP = 3


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
    # Seconds from the start to the saga's deadline (None: no deadline).
    deadline: float | None = None
    # Whether its sagas end waiting for a person (STUCK, or a human task), so STUCK_CAP applies.
    gets_stuck: bool = False
    definition: str = DEFINITION

    @property
    def needs_credit(self) -> bool:
        """Say whether the total fits the customer's limit, so their credit must not run out."""
        return self.customer is not None and Decimal(self.total) <= Decimal(
            self.customer.credit_limit
        )


BOUNCING_EMAIL = Scenario(
    "bouncing_email",
    BOUNCER,
    "3.00",
    "credit_card",
    (7,),
    "gets stuck after the pivot: the confirmation bounces (retry with edited context, skip)",
    gets_stuck=True,
)
# The slow card takes 3 seconds (PAYMENTS_GATEWAY_SLOW_SECONDS) and the order may take none: the
# sweeper flags the saga as timed out while the payment runs, before the pivot, so an operator
# may compensate it, or retry it. Whether a sweep falls inside those 3 seconds is up to the clock
# (about 3 times in 5 with make run's 5-second sweeps), so the cycle has it twice.
PAYMENT_PAST_DEADLINE = Scenario(
    "payment_past_deadline",
    ADA,
    "6.00",
    "card_slow",
    (8,),
    "may get stuck before the pivot: timed out while the slow card pays (compensate)",
    deadline=0.0,
    gets_stuck=True,
)

# Both kinds of stuck saga early in the cycle, so that every action can be tried within a minute.
SCENARIOS = (
    Scenario("approved", ADA, "12.50", "credit_card", (1, 2), "completes: approved and confirmed"),
    BOUNCING_EMAIL,
    PAYMENT_PAST_DEADLINE,
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
    PAYMENT_PAST_DEADLINE,
    Scenario(
        "large_order_review",
        MARGARET,
        "1500.00",
        "credit_card",
        (8,),
        "review_large_order: fraud desk passes, warehouse signals; waits for a reviewer",
        gets_stuck=True,
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
        " card (retried), card gateway down (compensated), a bouncing email (stuck after the"
        " pivot) and a slow payment past the order's deadline (stuck before the pivot). Each saga"
        " has a business key of its own; a scenario that leaves sagas stuck starts no more while"
        " --stuck-cap of them are stuck. Ctrl-C stops it."
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
        parser.add_argument(
            "--stuck-cap",
            type=int,
            default=STUCK_CAP,
            help="start no more sagas of a scenario that gets stuck while this many of them are"
            f" STUCK (default {STUCK_CAP})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval: float = options["interval"]
        count: int | None = options["count"]
        self.stuck_cap: int = options["stuck_cap"]
        # The capped scenarios already reported, so that the message is printed once.
        self.announced: set[str] = set()
        if interval < 0:
            raise CommandError("--interval must be zero or more seconds")
        if count is not None and count < 1:
            raise CommandError("--count must be at least 1")
        if self.stuck_cap < 1:
            raise CommandError("--stuck-cap must be at least 1")
        self.ensure_definition()
        customers = {demo: self.ensure_customer(demo) for demo in DEMO_CUSTOMERS}
        stop = threading.Event()
        started = 0
        with stop_on_signals(stop):
            for scenario in itertools.cycle(SCENARIOS):
                if stop.is_set():
                    break
                if self.capped(scenario):
                    # Nothing started, so no wait either: the next scenario goes now.
                    continue
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

    def capped(self, scenario: Scenario) -> bool:
        """Say whether the scenario already has --stuck-cap sagas STUCK or on their way there
        (still active), and say so once."""
        if not scenario.gets_stuck:
            return False
        stuck = SagaInstance.objects.filter(
            status__in=(SagaStatus.STUCK, *ACTIVE_STATUSES),
            business_key__startswith=f"demo:{scenario.name}:",
        ).count()
        capped = stuck >= self.stuck_cap
        announced = self.announced
        if capped and scenario.name not in announced:
            self.stdout.write(
                f"{scenario.name}: {stuck} sagas are stuck (or on their way), waiting for an"
                " operator; starting no more until one is repaired."
            )
        if capped:
            announced.add(scenario.name)
        else:
            announced.discard(scenario.name)
        return capped

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
                business_key=business_key(scenario),
                deadline=(
                    None
                    if scenario.deadline is None
                    else clock.now() + timedelta(seconds=scenario.deadline)
                ),
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


def business_key(scenario: Scenario) -> str:
    """Return a business key of the saga's own: demo:<scenario>:<order number>."""
    return f"demo:{scenario.name}:{uuid.uuid4().hex[:8]}"


def scenario_of(saga: SagaInstance) -> str:
    """Return the name of the scenario a demo saga was started for ("" for others)."""
    prefix, _, rest = saga.business_key.partition(":")
    return rest.partition(":")[0] if prefix == "demo" else ""


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
