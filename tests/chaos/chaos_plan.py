"""The chaos run's plan, drawn from one seed: customers, orders, and faults by order position.

Only what happens at run time depends on timing (which worker happens to be busy, how requests
interleave); what is asked of the system, and after which order each fault is injected, is a pure
function of the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from payments import gateway

DEFAULT_SEED = 20251201
ORDERS = 100
# Seconds between two orders' first requests: 100 orders over ~45 s of faults.
ORDER_SPACING = 0.45
BOUNCING_DOMAIN = "bounce.invalid"  # notifications.mail refuses every address there

# Replaying an order's Idempotency-Key: never, once after the answer, or twice at the same time.
NO_REPLAY = "none"
REPLAY_AFTER = "after"
REPLAY_CONCURRENT = "concurrent"

KILL_WORKER = "kill_worker"
FLUSH_REDIS = "flush_redis"
DB_OUTAGE = "db_outage"
KILL_SWEEPER = "kill_sweeper"
RESTART_SWEEPER = "restart_sweeper"


@dataclass(frozen=True)
class CustomerPlan:
    index: int
    name: str
    credit_limit: Decimal
    email: str | None

    @property
    def deliverable(self) -> bool:
        return self.email is not None and not self.email.endswith("@" + BOUNCING_DOMAIN)


@dataclass(frozen=True)
class OrderPlan:
    index: int
    # None: an unknown customer (no such id).
    customer: int | None
    total: Decimal
    method: str
    replay: str

    @property
    def key(self) -> str:
        return f"chaos-order-{self.index:04d}"


@dataclass(frozen=True)
class Fault:
    # Injected just before this order's first request.
    at_order: int
    kind: str
    # Seconds, for a database outage: how long backends keep being terminated.
    duration: float = 0.0


@dataclass(frozen=True)
class Plan:
    seed: int
    customers: tuple[CustomerPlan, ...]
    orders: tuple[OrderPlan, ...]
    faults: tuple[Fault, ...] = field(default=())

    def faults_at(self, order_index: int) -> list[Fault]:
        return [fault for fault in self.faults if fault.at_order == order_index]

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for fault in self.faults:
            kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
        methods: dict[str, int] = {}
        for order in self.orders:
            methods[order.method] = methods.get(order.method, 0) + 1
        replays = sum(order.replay != NO_REPLAY for order in self.orders)
        unknown = sum(order.customer is None for order in self.orders)
        return (
            f"seed {self.seed}: {len(self.customers)} customers, {len(self.orders)} orders"
            f" {dict(sorted(methods.items()))}, {unknown} for unknown customers, {replays}"
            f" replayed keys; faults {dict(sorted(kinds.items()))}"
        )


def make_plan(seed: int) -> Plan:
    """Return the plan for `seed`; the same seed always gives the same plan."""
    rng = random.Random(seed)
    customers = _customers(rng)
    orders = _orders(rng, customers)
    return Plan(seed=seed, customers=customers, orders=orders, faults=_faults(rng))


def _customers(rng: random.Random) -> tuple[CustomerPlan, ...]:
    shapes = (
        # (how many, credit limit range, email kind)
        (4, (5000, 5000), "ok"),
        (4, (40, 80), "ok"),  # small limits: some orders go over them
        (2, (5000, 5000), None),
        (2, (5000, 5000), "bouncing"),
    )
    customers = []
    for count, (low, high), email_kind in shapes:
        for _ in range(count):
            index = len(customers)
            email = None
            if email_kind == "ok":
                email = f"customer{index}@example.com"
            elif email_kind == "bouncing":
                email = f"customer{index}@{BOUNCING_DOMAIN}"
            limit = Decimal(rng.randint(low, high)).quantize(Decimal("0.01"))
            customers.append(CustomerPlan(index, f"Chaos {index}", limit, email))
    return tuple(customers)


def _orders(rng: random.Random, customers: tuple[CustomerPlan, ...]) -> tuple[OrderPlan, ...]:
    methods = gateway.METHODS
    weights = (40, 12, 18, 10, 20)
    orders = []
    for index in range(ORDERS):
        customer: int | None = rng.randrange(len(customers))
        if rng.random() < 0.05:
            customer = None
        method = rng.choices(methods, weights)[0]
        total = Decimal(rng.randint(500, 2500)) / 100
        if customer is not None and customers[customer].credit_limit < 100 and rng.random() < 0.3:
            total = customers[customer].credit_limit + Decimal(rng.randint(1, 2000)) / 100
        replay = rng.choices((NO_REPLAY, REPLAY_AFTER, REPLAY_CONCURRENT), (75, 12, 13))[0]
        # No per-order address: a confirmation goes to the customer's own (no mail relay).
        orders.append(OrderPlan(index, customer, total, method, replay))
    # Every kind of request at least once, whatever the draw: the first orders cover them.
    tight = next(c.index for c in customers if c.credit_limit < 100)
    for index, method in enumerate(methods):
        orders[index] = _with(orders[index], method=method)
    orders[5] = _with(orders[5], customer=None)
    orders[6] = _with(orders[6], customer=tight, total=customers[tight].credit_limit + 1)
    orders[7] = _with(orders[7], replay=REPLAY_AFTER)
    orders[8] = _with(orders[8], replay=REPLAY_CONCURRENT)
    return tuple(orders)


def _with(order: OrderPlan, **changes: object) -> OrderPlan:
    values = {**vars(order), **changes}
    return OrderPlan(**values)  # type: ignore[arg-type]


def _faults(rng: random.Random) -> tuple[Fault, ...]:
    faults = []
    at = 6
    while at < ORDERS - 4:  # a busy worker dies every few seconds
        faults.append(Fault(at, KILL_WORKER))
        at += rng.randint(7, 11)
    for third in (1, 2):  # Redis loses everything twice
        faults.append(
            Fault(rng.randint(third * ORDERS // 3 - 8, third * ORDERS // 3 + 8), FLUSH_REDIS)
        )
    for quarter in range(4):  # bursts of terminated database connections
        at = rng.randint(quarter * ORDERS // 4 + 3, (quarter + 1) * ORDERS // 4 - 3)
        faults.append(Fault(at, DB_OUTAGE, duration=round(rng.uniform(1.0, 2.0), 2)))
    killed = rng.randint(ORDERS // 2 - 10, ORDERS // 2 + 10)  # the sweeper dies once
    faults.append(Fault(killed, KILL_SWEEPER))
    faults.append(Fault(killed + rng.randint(6, 12), RESTART_SWEEPER))
    return tuple(sorted(faults, key=lambda fault: (fault.at_order, fault.kind)))
