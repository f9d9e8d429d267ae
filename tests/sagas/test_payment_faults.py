"""A fault at every database operation between the card gateway's answer and the commit that
records the payment step's outcome: whatever fails where, money stays taken only for approved
orders, and each customer's available credit is its limit less its approved totals.

Only the fault is fake: each database operation in the window is made to fail in turn, either as
a dropped connection (OperationalError: the worker survives and records a fault) or as the worker
dying there (nothing more runs in it; its lease expires and the sweeper retries the step). A
commit is also failed after it reached the database (its answer was lost). Everything else is the
real saga on the real database, with in-process RQ workers and the fake clock. Each test first
runs one order without faults to list the operations of the window, then places one order per
operation, each failing at its own, and runs them all together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import OperationalError, connections
from django.db.models import Sum
from testkit import drain, work

from bpm import clock, engine, services, sweeper
from bpm.models import ACTIVE_STATUSES, SagaInstance, SagaStatus, StepRun, StepStatus
from orders.models import Order, OrderState
from payments import gateway
from payments.models import ChargeStatus, Customer, GatewayCharge, Payment, PaymentStatus
from payments.services import customer_available_credit, customer_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ERROR = "error"  # the connection drops: the operation raises OperationalError
DEATH = "death"  # the worker process dies there: nothing after it runs
BEFORE = "before"  # the operation never reached the database
AFTER = "after"  # a commit reached the database, but its answer was lost


class WorkerDied(BaseException):
    """Stands in for SIGKILL: no `except Exception` in the engine or the services sees it."""


@dataclass(frozen=True)
class Point:
    """One place to fail: the n-th database operation after the gateway answered."""

    index: int
    operation: str
    phase: str

    def __str__(self) -> str:
        return f"#{self.index} {self.operation} ({self.phase})"


@dataclass
class Faults:
    """Fails one operation in the window after a gateway call under `key`, once or every time.

    The window opens when the gateway answers `trigger` ("charge" or "refund") and closes with
    the commit that follows the engine's `record` of the step's outcome. A dry run (no `point`)
    lists the operations of its first window.
    """

    trigger: str
    key: str | None = None
    point: Point | None = None
    kind: str = ERROR
    every_time: bool = False
    window: list[Point] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    open: bool = False
    _closing: bool = False
    _count: int = 0
    _windows: int = 0

    def opens(self, call: str, key: str) -> bool:
        if call != self.trigger or self.key not in (None, key):
            return False
        if self._windows and not self.every_time:
            return False
        self.open, self._closing, self._count = True, False, 0
        self._windows += 1
        return True

    def closing(self) -> None:
        self._closing = True

    def reach_query(self, sql: str) -> None:
        self._count += 1
        self._reach(Point(self._count, describe(sql), BEFORE))

    def reach_commit(self, phase: str) -> None:
        if phase == BEFORE:
            self._count += 1
        self._reach(Point(self._count, "COMMIT", phase))
        if phase == AFTER and self._closing:
            self.open = False

    def _reach(self, here: Point) -> None:
        if self.point is None:
            if self._windows == 1:
                self.window.append(here)
            return
        if (here.index, here.phase) != (self.point.index, self.point.phase):
            return
        self.open = False
        self.fired.append(str(here))
        if self.kind == DEATH:
            raise WorkerDied(f"worker killed at {here}")
        raise OperationalError(f"server closed the connection unexpectedly (at {here})")


def describe(sql: str) -> str:
    """Return the kind of statement and the table it touches, e.g. 'INSERT payments_payment'."""
    words = sql.replace('"', "").split()
    upper = [word.upper() for word in words]
    if upper[0] in {"SAVEPOINT", "RELEASE", "ROLLBACK"}:
        return upper[0]
    for marker in ("FROM", "INTO", "UPDATE"):
        if marker in upper:
            return f"{upper[0]} {words[upper.index(marker) + 1]}"
    return upper[0]


class Injector:
    """Routes the gateway's answers, the engine's records, queries and commits to the faults.

    One window is open at a time: the worker runs in this thread, one step after the other.
    """

    def __init__(self) -> None:
        self.faults: list[Faults] = []
        self.current: Faults | None = None

    def __call__(self, trigger: str, **options: Any) -> Faults:
        faults = Faults(trigger, **options)
        self.faults.append(faults)
        return faults

    def clear(self) -> None:
        self.faults.clear()
        self.current = None

    def opened_by(self, call: str, key: str) -> None:
        if self.current is None:
            self.current = next((f for f in self.faults if f.opens(call, key)), None)

    def closing(self) -> None:
        if self.current is not None:
            self.current.closing()

    def query(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any):
        if self.current is not None:
            self._reach(lambda faults: faults.reach_query(sql))
        return execute(sql, params, many, ctx)

    def commit(self, real_commit: Callable[[], None]) -> None:
        if self.current is None:
            real_commit()
            return
        try:
            self._reach(lambda faults: faults.reach_commit(BEFORE))
        except WorkerDied:
            # The server rolls back the transaction of a connection whose process died.
            connections["default"]._rollback()
            raise
        real_commit()
        self._reach(lambda faults: faults.reach_commit(AFTER))

    def _reach(self, reach: Callable[[Faults], None]) -> None:
        faults = self.current
        assert faults is not None
        try:
            reach(faults)
        finally:
            if not faults.open:
                self.current = None


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Iterator[Injector]:
    """Return the Injector, installed in the gateway, the engine and the connection."""
    injector = Injector()
    connection = connections["default"]
    real_charge, real_refund, real_record = gateway.charge, gateway.refund, engine.record
    real_commit = connection._commit

    def charge(**kwargs: Any) -> Any:
        answer = real_charge(**kwargs)
        injector.opened_by("charge", kwargs["idempotency_key"])
        return answer

    def refund(**kwargs: Any) -> Any:
        answer = real_refund(**kwargs)
        injector.opened_by("refund", kwargs["idempotency_key"])
        return answer

    def record(*args: Any, **kwargs: Any) -> Any:
        injector.closing()
        return real_record(*args, **kwargs)

    monkeypatch.setattr(gateway, "charge", charge)
    monkeypatch.setattr(gateway, "refund", refund)
    monkeypatch.setattr(engine, "record", record)
    monkeypatch.setattr(connection, "_commit", lambda: injector.commit(real_commit))
    with connection.execute_wrapper(injector.query):
        yield injector


def settle(max_rounds: int = 30) -> None:
    """Run every saga to its end: drain the queues, and expire the leases of dead workers."""
    for _ in range(max_rounds):
        drain()
        running = StepRun.objects.filter(
            status=StepStatus.RUNNING, saga__status__in=ACTIVE_STATUSES
        )
        if not running.exists():
            return
        latest = max(run.lease_expires_at for run in running)
        clock.advance(max((latest - clock.now()).total_seconds(), 0) + 1)
        sweeper.expire_leases()
    raise AssertionError("sagas still running after settling")


def place(customer: Customer, total: str = "30.00") -> SagaInstance:
    order_input = {
        "customer_id": customer.pk,
        "products": [1],
        "total": total,
        "payment_method": "credit_card",
    }
    return services.saga_start(definition="place_order", input=order_input, actor="test")


def a_customer() -> Customer:
    return customer_create(name="Ada", credit_limit="50.00")


def order_of(saga: SagaInstance) -> Order:
    return Order.objects.get(saga_id=saga.id)


def take_key(saga: SagaInstance) -> str:
    return f"{saga.id}:take_payment:forward"


def charge_of(saga: SagaInstance) -> GatewayCharge:
    return GatewayCharge.objects.get(idempotency_key=take_key(saga))


def assert_money_follows_the_orders() -> None:
    """Charged at the gateway iff approved; credit = limit - approved totals; every saga done."""
    unfinished = SagaInstance.objects.filter(status__in=[*ACTIVE_STATUSES, SagaStatus.STUCK])
    assert not unfinished.exists(), list(unfinished.values("id", "status", "stuck_reason"))
    wrong = []
    for saga in SagaInstance.objects.all():
        order = order_of(saga)
        charge = GatewayCharge.objects.filter(idempotency_key=take_key(saga)).first()
        charged = charge is not None and charge.status == ChargeStatus.CHARGED
        approved = order.state == OrderState.APPROVED
        reserved = Payment.objects.filter(order_id=order.pk, status=PaymentStatus.RESERVED)
        if charged != approved or reserved.count() != int(approved):
            status = charge.status if charge else "absent"
            wrong.append(
                f"order {order.pk} {order.state}, charge {status}, {reserved.count()} held"
            )
    assert not wrong, wrong
    for customer in Customer.objects.all():
        approved_orders = Order.objects.filter(customer_id=customer.pk, state=OrderState.APPROVED)
        approved_total = approved_orders.aggregate(total=Sum("total"))["total"] or Decimal(0)
        available = customer_available_credit(customer_id=customer.pk)
        assert available == customer.credit_limit - approved_total, customer


def dry_window(inject: Injector, trigger: str, run: Callable[[], object]) -> list[Point]:
    """Return the operations of the first window after `trigger` in a run without faults."""
    faults = inject(trigger)
    run()
    inject.clear()
    assert faults.window, f"the gateway never answered {trigger}"
    return faults.window


def one_order() -> None:
    place(a_customer())
    settle()


def assert_each_fired(faulted: dict[Point, tuple[SagaInstance, Faults]]) -> None:
    silent = [str(point) for point, (_, faults) in faulted.items() if not faults.fired]
    assert not silent, f"faults that never fired: {silent}"


# --- the scenarios ----------------------------------------------------------------------------


def test_the_window_after_a_charge_runs_to_the_commit_of_the_step_outcome(inject):
    operations = [str(point) for point in dry_window(inject, "charge", one_order)]
    assert any("INSERT payments_payment" in op for op in operations), operations
    assert any("UPDATE bpm_steprun" in op for op in operations), operations
    assert operations[-1].endswith("COMMIT (after)"), operations


@pytest.mark.parametrize("kind", [ERROR, DEATH])
def test_a_fault_anywhere_after_the_charge_still_takes_the_payment_once(inject, kind):
    faulted = {}
    for point in dry_window(inject, "charge", one_order):
        saga = place(a_customer())
        faulted[point] = saga, inject("charge", key=take_key(saga), point=point, kind=kind)
    settle()
    assert_each_fired(faulted)
    assert_money_follows_the_orders()
    for point, (saga, _) in faulted.items():
        assert order_of(saga).state == OrderState.APPROVED, point
        assert Payment.objects.filter(order_id=order_of(saga).pk).count() == 1, point


@pytest.mark.parametrize("kind", [ERROR, DEATH])
def test_a_retry_that_finds_the_credit_taken_gives_the_earlier_charge_back(inject, kind):
    faulted = {}
    for point in dry_window(inject, "charge", one_order):
        saga = place(a_customer())
        faulted[point] = saga, inject("charge", key=take_key(saga), point=point, kind=kind)
    work()  # each first attempt, up to its fault
    for saga, _ in faulted.values():
        # Another order takes the credit before the first one's retry comes round.
        place(Customer.objects.get(pk=saga.input["customer_id"]), total="40.00")
    settle()
    assert_each_fired(faulted)
    assert_money_follows_the_orders()
    rejected = [saga for saga, _ in faulted.values() if order_of(saga).state != "APPROVED"]
    assert rejected, "no fault point left the first payment unrecorded"
    for saga in rejected:
        assert order_of(saga).rejection_reason == "INSUFFICIENT_CREDIT"
        assert charge_of(saga).status == ChargeStatus.REFUNDED


@pytest.mark.parametrize("kind", [ERROR, DEATH])
def test_a_retry_that_finds_the_customer_gone_gives_the_earlier_charge_back(inject, kind):
    faulted = {}
    for point in dry_window(inject, "charge", one_order):
        saga = place(a_customer())
        faulted[point] = saga, inject("charge", key=take_key(saga), point=point, kind=kind)
    work()
    # Accounts closed before the retries; those with a payment recorded cannot be deleted.
    Customer.objects.filter(payments__isnull=True).delete()
    settle()
    assert_each_fired(faulted)
    assert_money_follows_the_orders()
    rejected = [saga for saga, _ in faulted.values() if order_of(saga).state != "APPROVED"]
    assert rejected, "no fault point left the payment unrecorded"
    for saga in rejected:
        assert order_of(saga).rejection_reason == "UNKNOWN_CUSTOMER"
        assert charge_of(saga).status == ChargeStatus.REFUNDED


def test_a_fault_after_every_charge_exhausts_the_step_and_its_refund_gives_the_charge_back(
    inject,
):
    faulted = {}
    for point in dry_window(inject, "charge", one_order):
        saga = place(a_customer())
        faults = inject("charge", key=take_key(saga), point=point, every_time=True)
        faulted[point] = saga, faults
    settle()
    assert_each_fired(faulted)
    assert_money_follows_the_orders()
    # Past the payment's commit a retry finds the payment and never charges again.
    cancelled = [saga for saga, _ in faulted.values() if order_of(saga).state != "APPROVED"]
    assert cancelled, "no fault point failed every attempt"
    for saga in cancelled:
        assert order_of(saga).state == OrderState.CANCELLED
        assert charge_of(saga).status == ChargeStatus.REFUNDED


FIRST = Point(1, "the first operation", BEFORE)


def exhausted(inject: Injector) -> tuple[SagaInstance, Callable[[], object]]:
    """Place an order whose every payment attempt fails after charging: its refund runs."""
    saga = place(a_customer())
    inject("charge", key=take_key(saga), point=FIRST, every_time=True)
    return saga, lambda: None


def refused_after_charging(inject: Injector) -> tuple[SagaInstance, Callable[[], object]]:
    """Place an order whose first attempt charges and fails; the credit is gone at its retry."""
    customer = a_customer()
    saga = place(customer)
    inject("charge", key=take_key(saga), point=FIRST)
    return saga, lambda: place(customer, total="40.00")


@pytest.mark.parametrize("scenario", [exhausted, refused_after_charging])
@pytest.mark.parametrize("kind", [ERROR, DEATH])
def test_a_fault_anywhere_after_giving_a_charge_back_leaves_nothing_charged(inject, kind, scenario):
    def dry_run() -> None:
        _, meanwhile = scenario(inject)
        work()
        meanwhile()
        settle()

    faulted = {}
    meanwhiles = []
    for point in dry_window(inject, "refund", dry_run):
        saga, meanwhile = scenario(inject)
        faulted[point] = saga, inject("refund", key=take_key(saga), point=point, kind=kind)
        meanwhiles.append(meanwhile)
    work()
    for meanwhile in meanwhiles:
        meanwhile()
    settle()
    assert_each_fired(faulted)
    assert_money_follows_the_orders()
    for point, (saga, _) in faulted.items():
        assert order_of(saga).state != OrderState.APPROVED, point
        assert charge_of(saga).status == ChargeStatus.REFUNDED, point
