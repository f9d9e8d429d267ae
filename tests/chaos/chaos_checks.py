"""The invariants checked after the faults stop, each with the evidence when it fails."""

from __future__ import annotations

import email
import io
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import chaos_plan as plan
import django_rq
from chaos_client import Client, Exchange
from chaos_faults import FaultLog
from django.core.management import call_command
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from bpm import clock, definitions, dispatch
from bpm.models import (
    ACTIVE_STATUSES,
    EventType,
    SagaEvent,
    SagaInstance,
    SagaStatus,
    StepRun,
    StepStatus,
)
from notifications.models import Notification
from orders.api.serializers import OrderSerializer
from orders.models import Order, OrderState
from payments.models import ChargeStatus, Customer, GatewayCharge, Payment, PaymentStatus
from payments.services import customer_available_credit

SETTLED = "every saga terminal or STUCK with a reason within the settling time"
NO_STALLED_DOORBELL = (
    "no saga with a due PENDING run (at attempt 0, or a retry) and no live doorbell"
)
NO_CHARGE_ON_REJECTED = "no rejected or cancelled order with money taken at the gateway"
CREDIT = "each customer's available credit = its limit - its approved totals (API and DB)"
ONE_CONFIRMATION = "exactly one confirmation per approved order with a deliverable email"
HTTP = "no 5xx other than 503 during a database outage"
ONE_ORDER_PER_KEY = "one order per Idempotency-Key, every key answered 201"
API_EQUALS_DB = "GET /api/v1/orders/<id>/ equals the order's row"
INVARIANTS = (
    SETTLED,
    NO_STALLED_DOORBELL,
    NO_CHARGE_ON_REJECTED,
    CREDIT,
    ONE_CONFIRMATION,
    HTTP,
    ONE_ORDER_PER_KEY,
    API_EQUALS_DB,
)
TERMINAL = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.ABORTED)
# How long a due run may wait for a doorbell: the chaos stack's BPM_REDRIVE_GRACE (2 s) plus one
# sweep (1 s), plus slack for a loaded machine. A scheduled doorbell as late as this is lost too.
OVERDUE = timedelta(seconds=5)


@dataclass
class Findings:
    failed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Each implicated saga with the first invariant it broke, to show the worst ones first.
    sagas: dict[uuid.UUID, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def fail(self, invariant: str, evidence: str, saga_id: uuid.UUID | None = None) -> None:
        self.failed[invariant].append(evidence)
        if saga_id is not None:
            self.sagas.setdefault(saga_id, INVARIANTS.index(invariant))

    def held(self) -> list[str]:
        return [name for name in INVARIANTS if name not in self.failed]


def unsettled_sagas() -> list[SagaInstance]:
    """Return the sagas that are neither terminal nor STUCK with a reason."""
    stuck_without_reason = SagaInstance.objects.filter(status=SagaStatus.STUCK, stuck_reason="")
    active = SagaInstance.objects.filter(status__in=ACTIVE_STATUSES)
    return list(active | stuck_without_reason)


def payment_key(saga_id: uuid.UUID) -> str:
    return f"{saga_id}:take_payment:forward"


def confirmation_key(saga_id: uuid.UUID) -> str:
    return f"{saga_id}:send_confirmation:forward"


class Checker:
    def __init__(
        self,
        the_plan: plan.Plan,
        customer_ids: dict[int, int],
        client: Client,
        faults: FaultLog,
        live_workers: set[str],
        mail_dir: Path,
    ) -> None:
        self.plan = the_plan
        self.customer_ids = customer_ids
        self.client = client
        self.faults = faults
        self.live_workers = live_workers
        self.mail_dir = mail_dir
        self.findings = Findings()

    def run(self, unsettled: Iterable[SagaInstance]) -> Findings:
        for saga in unsettled:
            self.findings.fail(
                SETTLED,
                f"saga {saga.id} is {saga.status}"
                + (f" ({saga.stuck_reason})" if saga.stuck_reason else " without a reason")
                + f"; waiting on: {self.waiting_on(saga)}",
                saga.id,
            )
        self.note_retries()
        # First, while the deadline's state still holds.
        self.check_doorbells()
        orders_by_key = self.check_keys()
        self.check_gateway()
        self.check_credit()
        self.check_confirmations(orders_by_key)
        self.check_http()
        self.check_api(orders_by_key)
        return self.findings

    # --- one order per key, and every key decided -------------------------------------------

    def check_keys(self) -> dict[str, Order]:
        answers: dict[str, list[Exchange]] = defaultdict(list)
        for exchange in self.client.exchanges:
            if exchange.method == "POST" and exchange.path == "/api/v1/orders/" and exchange.key:
                answers[exchange.key].append(exchange)
        orders_by_key: dict[str, Order] = {}
        for order in self.plan.orders:
            exchanges = answers.get(order.key, [])
            created = [e for e in exchanges if e.status == 201]
            if not created:
                last = exchanges[-1].describe(self.faults.origin) if exchanges else "no request"
                self.findings.fail(ONE_ORDER_PER_KEY, f"{order.key} never got a 201: {last}")
                continue
            ids = {e.body["id"] for e in created}
            if len(ids) != 1:
                self.findings.fail(ONE_ORDER_PER_KEY, f"{order.key} answered orders {sorted(ids)}")
            row = Order.objects.filter(pk=min(ids)).first()
            if row is None:
                self.findings.fail(ONE_ORDER_PER_KEY, f"{order.key}: order {min(ids)} not in DB")
                continue
            orders_by_key[order.key] = row
            finals = [e for e in exchanges if e.status and e.status not in (409, 500, 502, 503)]
            odd = [e for e in finals if e.status != 201]
            for exchange in odd:
                self.findings.fail(
                    ONE_ORDER_PER_KEY,
                    f"{order.key}: {exchange.describe(self.faults.origin)}",
                    row.saga_id,
                )
        answered = {order.pk for order in orders_by_key.values()}
        for orphan in Order.objects.exclude(pk__in=answered):
            self.findings.fail(
                ONE_ORDER_PER_KEY,
                f"order {orphan.pk} ({orphan.state}) was created but no key was answered with it",
                orphan.saga_id,
            )
        return orders_by_key

    # --- doorbells ------------------------------------------------------------------------------

    def check_doorbells(self) -> None:
        pending = StepRun.objects.filter(
            status=StepStatus.PENDING, saga__status__in=ACTIVE_STATUSES
        ).select_related("saga", "step")
        for run in pending:
            live, state = self.doorbell(run)
            line = (
                f"saga {run.saga_id} step {run.step.name} {run.direction} PENDING attempts"
                f" {run.attempts} due {run.due_at:%H:%M:%S.%f}: doorbell {state}"
            )
            # The sweeper rings a lost doorbell within BPM_REDRIVE_GRACE plus one sweep.
            if not live and run.due_at < clock.now() - OVERDUE:
                self.findings.fail(NO_STALLED_DOORBELL, line, run.saga_id)
            else:
                self.findings.notes.append(line)

    def waiting_on(self, saga: SagaInstance) -> str:
        """Describe the runs an unsettled saga waits on, with their doorbells."""
        runs = StepRun.objects.filter(
            saga=saga, status__in=(StepStatus.PENDING, StepStatus.RUNNING)
        ).select_related("saga", "step")
        described = []
        for run in runs:
            what = f"{run.step.name} {run.direction} {run.status} attempts {run.attempts}"
            if run.status == StepStatus.PENDING:
                what += f" due {run.due_at:%H:%M:%S}, doorbell {self.doorbell(run)[1]}"
            elif run.lease_expires_at is not None:
                what += f" lease until {run.lease_expires_at:%H:%M:%S}"
            described.append(what)
        return "; ".join(described) or "nothing"

    def note_retries(self) -> None:
        """Note how many delayed retries the sweeper had to ring again."""
        retries = SagaEvent.objects.filter(type=EventType.ATTEMPT_FAILED).count()
        by_sweeper = SagaEvent.objects.filter(type=EventType.REDRIVEN, attempt__gte=1).count()
        self.findings.notes.append(
            f"{retries} attempts failed and were retried later; the sweeper rang {by_sweeper}"
            " retries' doorbells again (no scheduler had moved them, or a flush lost them)"
        )

    def doorbell(self, run: StepRun) -> tuple[bool, str]:
        """Say whether a live worker will see this run's doorbell, and in what state it is."""
        step = next(s for s in definitions.steps_of(run.saga.definition_id) if s.id == run.step_id)
        connection = django_rq.get_connection(step.queue)
        job_id = dispatch.job_id(run.id, str(run.token))
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            return False, "absent from Redis"
        status = job.get_status()
        if status == JobStatus.QUEUED:
            if job_id in django_rq.get_queue(step.queue).get_job_ids():
                return True, "QUEUED in the queue"
            return False, "QUEUED but not in the queue (taken by a worker that died?)"
        if status == JobStatus.STARTED:
            if job.worker_name in self.live_workers:
                return True, f"STARTED by live worker {job.worker_name}"
            return False, f"STARTED by dead worker {job.worker_name}"
        if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
            overdue = run.due_at < clock.now() - OVERDUE
            return not overdue, f"{status.value} ({'overdue' if overdue else 'not yet due'})"
        return False, str(getattr(status, "value", status))

    # --- money --------------------------------------------------------------------------------

    def check_gateway(self) -> None:
        undone = Order.objects.filter(state__in=(OrderState.REJECTED, OrderState.CANCELLED))
        keys = {payment_key(order.saga_id): order for order in undone}
        charged = GatewayCharge.objects.filter(
            idempotency_key__in=list(keys), status=ChargeStatus.CHARGED
        )
        for charge in charged:
            order = keys[charge.idempotency_key]
            self.findings.fail(
                NO_CHARGE_ON_REJECTED,
                f"order {order.pk} is {order.state} ({order.rejection_reason}) but the gateway"
                f" keeps {charge.amount} CHARGED under {charge.idempotency_key}"
                f" (Payment rows: {Payment.objects.filter(order_id=order.pk).count()})",
                order.saga_id,
            )

    def check_credit(self) -> None:
        for index, customer_id in self.customer_ids.items():
            customer = Customer.objects.get(pk=customer_id)
            approved = Order.objects.filter(customer_id=customer_id, state=OrderState.APPROVED)
            expected = customer.credit_limit - sum((o.total for o in approved), Decimal(0))
            from_db = customer_available_credit(customer_id=customer_id)
            from_api = Decimal(
                self.client.get_json(f"/api/v1/customers/{customer_id}/")["available_credit"]
            )
            if from_db != expected or from_api != expected:
                reserved = Payment.objects.filter(
                    customer_id=customer_id, status=PaymentStatus.RESERVED
                ).values_list("order_id", flat=True)
                extra = set(reserved) - {o.pk for o in approved}
                missing = {o.pk for o in approved} - set(reserved)
                self.findings.fail(
                    CREDIT,
                    f"customer {customer_id} (plan #{index}, limit {customer.credit_limit}):"
                    f" expected {expected}, DB says {from_db}, API says {from_api}; reserved"
                    f" for orders not approved: {sorted(extra)}; approved without a reserved"
                    f" payment: {sorted(missing)}",
                )
                for order in Order.objects.filter(pk__in=extra | missing):
                    self.findings.sagas.setdefault(order.saga_id, INVARIANTS.index(CREDIT))

    # --- mail -----------------------------------------------------------------------------------

    def check_confirmations(self, orders_by_key: dict[str, Order]) -> None:
        mailed = Counter(self.mailed_keys())
        for order_plan in self.plan.orders:
            order = orders_by_key.get(order_plan.key)
            if order is None:
                continue
            recipient = None
            if order_plan.customer is not None:
                recipient = self.plan.customers[order_plan.customer].email
            deliverable = recipient is not None and not recipient.endswith(
                "@" + plan.BOUNCING_DOMAIN
            )
            expected = 1 if order.state == OrderState.APPROVED and deliverable else 0
            recorded = Notification.objects.filter(saga_id=order.saga_id).count()
            sent = mailed[confirmation_key(order.saga_id)]
            if recorded != expected or (expected and not sent) or (sent and not expected):
                self.findings.fail(
                    ONE_CONFIRMATION,
                    f"{order_plan.key} (order {order.pk}) {order.state} to {recipient}:"
                    f" {recorded} notifications"
                    f" recorded and {sent} mails sent, expected {expected}",
                    order.saga_id,
                )
            elif sent > 1:
                self.findings.notes.append(
                    f"order {order.pk}: {sent} copies of its confirmation mailed (at least once,"
                    " as notifications/services.py documents)"
                )

    def mailed_keys(self) -> list[str]:
        keys = []
        for path in sorted(self.mail_dir.glob("*")):
            for chunk in path.read_text(errors="replace").split("-" * 79):
                if chunk.strip():
                    message = email.message_from_string(chunk.lstrip("\n"))
                    if message["X-Idempotency-Key"]:
                        # A long header is folded over two lines.
                        keys.append("".join(str(message["X-Idempotency-Key"]).split()))
        return keys

    # --- HTTP -----------------------------------------------------------------------------------

    def check_http(self) -> None:
        statuses: Counter[str] = Counter()
        for exchange in self.client.exchanges:
            outage = self.faults.in_outage(exchange.started, exchange.finished)
            label = str(exchange.status or "no answer") + (" in outage" if outage else "")
            statuses[label] += 1
            if exchange.status >= 500 and not (exchange.status == 503 and outage):
                where = "during" if outage else "outside"
                self.findings.fail(
                    HTTP,
                    f"{exchange.status} {where} a database outage:"
                    f" {exchange.describe(self.faults.origin)}",
                )
        self.findings.notes.append(f"HTTP statuses: {dict(sorted(statuses.items()))}")

    def check_api(self, orders_by_key: dict[str, Order]) -> None:
        for order in orders_by_key.values():
            row = Order.objects.get(pk=order.pk)
            expected = json.loads(json.dumps(OrderSerializer(row).data, default=str))
            answered = self.client.get_json(f"/api/v1/orders/{order.pk}/")
            if answered != expected:
                self.findings.fail(
                    API_EQUALS_DB, f"order {order.pk}: API {answered} != DB {expected}", row.saga_id
                )


def timeline(saga_id: uuid.UUID) -> str:
    """Return `manage.py saga_show <id>`'s output."""
    out = io.StringIO()
    call_command("saga_show", str(saga_id), stdout=out)
    return out.getvalue()


def report(the_plan: plan.Plan, findings: Findings, faults: FaultLog, limit: int = 12) -> str:
    lines = [
        f"chaos seed {the_plan.seed} (rerun: --chaos-seed {the_plan.seed})",
        the_plan.summary(),
    ]
    lines.append("faults:")
    lines += ["  " + line for line in faults.lines()]
    for name in INVARIANTS:
        evidence = findings.failed.get(name)
        lines.append(f"{'FAILED' if evidence else 'held  '}  {name}")
        for line in (evidence or [])[:40]:
            lines.append(f"          {line}")
        if evidence and len(evidence) > 40:
            lines.append(f"          ... and {len(evidence) - 40} more")
    lines.append("notes:")
    lines += ["  " + note for note in findings.notes[:60]]
    if findings.sagas:
        ordered = sorted(
            findings.sagas, key=lambda saga_id: (findings.sagas[saga_id], str(saga_id))
        )
        lines.append(f"failing sagas ({len(ordered)}): " + " ".join(map(str, ordered)))
        for saga_id in ordered[:limit]:
            lines.append(timeline(saga_id))
    return "\n".join(lines)
