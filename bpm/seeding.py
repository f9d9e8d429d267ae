"""Test data at scale: finished and stuck sagas with their step runs and events, written in bulk.

This is the one exception to "the engine is the only writer of saga and step-run rows". The engine
writes a saga one transition at a time under its row lock, which is right for live sagas and
hopeless for loading a million finished ones (hours, and the rows would all be "now"). A seeded
saga is never live: it is written already finished (COMPLETED, COMPENSATED, ABORTED) or STUCK with
no run PENDING or RUNNING, so no worker, doorbell or sweep ever races the loader. Each shape below
is one the planner (bpm.planner) reaches from its runs: `tests/bpm/test_seeding.py` replays every
seeded saga through `planner.decide` and checks it lands where its status says.

PostgreSQL gets the rows through COPY (psycopg 3's `cursor.copy`), other databases through
`bulk_create` in batches; both write a batch per transaction.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from bpm import clock
from bpm.models import (
    DefinitionEventType,
    DefinitionStatus,
    Direction,
    EventType,
    FailureKind,
    SagaDefinition,
    SagaEvent,
    SagaInstance,
    SagaStatus,
    StepDefinition,
    StepKind,
    StepRun,
    StepStatus,
    StuckReason,
)

ACTOR = "seed"
# What the sagas are made of, out of 1000: most complete, some compensate, a few are stuck or were
# aborted after being stuck (what a shop's history looks like).
SHAPES = (
    ("completed", 800),
    ("compensated", 120),
    ("stuck_exhausted", 15),
    ("stuck_refused", 5),
    ("stuck_compensation", 10),
    ("stuck_timed_out", 10),
    ("stuck_no_progress", 10),
    ("aborted", 30),
)
FIRST_NAMES = ("ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "linus", "radia")
DOMAINS = ("example.com", "example.org", "example.net")
METHODS = ("credit_card", "credit_card", "credit_card", "card_declined", "card_flaky")
REFUSALS = ("INSUFFICIENT_CREDIT", "UNKNOWN_CUSTOMER", "PAYMENT_DECLINED")


class SeedError(ValueError):
    """Nothing can be seeded (no published definition)."""


@dataclass(frozen=True)
class Version:
    """A published definition version and its steps, in order."""

    definition: SagaDefinition
    steps: tuple[StepDefinition, ...]

    @property
    def pivot(self) -> int:
        """Return the position (0-based) of the pivot, or after the last step when there is none.

        Steps before it may be refused and compensated; only RETRIABLE steps come after it.
        """
        for index, step in enumerate(self.steps):
            if step.kind != StepKind.COMPENSATABLE:
                return index
        return len(self.steps)


@dataclass
class Batch:
    """The rows of a batch of sagas; runs carry a local number that events refer to."""

    sagas: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SeedReport:
    sagas: int
    runs: int
    events: int
    by_status: dict[str, int]


def seed(
    count: int,
    *,
    batch_size: int = 5000,
    days: int = 90,
    versions: int = 3,
    rng_seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Write `count` finished or stuck sagas created over the last `days` days, in batches."""
    rng = random.Random(rng_seed)
    catalogue = published_versions(versions)
    now = clock.now()
    start = now - timedelta(days=days)
    by_status: dict[str, int] = {}
    runs = events = done = 0
    write = _copy_batch if connection.vendor == "postgresql" else _insert_batch
    while done < count:
        size = min(batch_size, count - done)
        batch = Batch()
        for _ in range(size):
            # Five minutes short of now: every seeded saga's timeline has ended by now.
            share = rng.random()
            moment = start + (now - start - timedelta(minutes=5)) * share
            version = _version_at(rng, catalogue, share)
            _saga(batch, rng, version, moment, now)
        with transaction.atomic():
            write(batch)
        for saga in batch.sagas:
            by_status[saga["status"]] = by_status.get(saga["status"], 0) + 1
        runs += len(batch.runs)
        events += len(batch.events)
        done += size
        if progress is not None:
            progress(done)
    return SeedReport(sagas=done, runs=runs, events=events, by_status=by_status)


def published_versions(versions: int) -> dict[str, list[Version]]:
    """Return, per definition name, its published versions oldest first, at least `versions` each.

    A definition with fewer is given copies of its newest published version (same steps, so the
    same behaviour), recorded as deployed by the seeder: seeded sagas then span versions as a
    shop's history does, older sagas on older versions.
    """
    names = sorted(
        set(
            SagaDefinition.objects.filter(status=DefinitionStatus.PUBLISHED).values_list(
                "name", flat=True
            )
        )
    )
    if not names:
        raise SeedError(
            "there is no published saga definition to seed sagas of: run `manage.py "
            "sync_definitions` first"
        )
    catalogue: dict[str, list[Version]] = {}
    for name in names:
        rows = list(
            SagaDefinition.objects.filter(name=name, status=DefinitionStatus.PUBLISHED)
            .order_by("version")
            .prefetch_related("steps")
        )
        while len(rows) < versions:
            rows.append(_copy_version(rows[-1]))
        catalogue[name] = [
            Version(row, tuple(sorted(row.steps.all(), key=lambda step: step.position)))
            for row in rows
            if row.steps.all()
        ]
    return {name: found for name, found in catalogue.items() if found}


@transaction.atomic
def _copy_version(source: SagaDefinition) -> SagaDefinition:
    latest = SagaDefinition.objects.filter(name=source.name).order_by("-version").first()
    assert latest is not None
    copy = SagaDefinition.objects.create(
        name=source.name,
        version=latest.version + 1,
        title=source.title,
        description=source.description,
        input_schema=source.input_schema,
        fingerprint=source.fingerprint,
        status=DefinitionStatus.PUBLISHED,
        change_reason=f"seed_sagas: a copy of v{source.version} so seeded sagas span versions",
    )
    StepDefinition.objects.bulk_create(
        StepDefinition(
            definition=copy,
            **{
                name: getattr(step, name)
                for name in (
                    "position",
                    "name",
                    "action",
                    "compensation",
                    "kind",
                    "max_attempts",
                    "initial_backoff",
                    "backoff_multiplier",
                    "max_backoff",
                    "jitter",
                    "timeout",
                    "queue",
                )
            },
        )
        for step in source.steps.order_by("position")
    )
    copy.log(DefinitionEventType.DEPLOYED, f"user:{ACTOR}", copy.change_reason)
    return copy


def _version_at(rng: random.Random, catalogue: dict[str, list[Version]], share: float) -> Version:
    """Return a version for a saga created `share` of the way through the period.

    Every definition is as likely; its versions split the period, the newest taking the last half.
    """
    versions = rng.choice([catalogue[name] for name in sorted(catalogue)])
    if len(versions) == 1 or share >= 0.5:
        return versions[-1]
    older = versions[:-1]
    return older[min(int(share * 2 * len(older)), len(older) - 1)]


def _saga(
    batch: Batch, rng: random.Random, version: Version, created: datetime, now: datetime
) -> None:
    shape = _pick_shape(rng, version)
    number = rng.randrange(1_000_000, 100_000_000)
    email = f"{rng.choice(FIRST_NAMES)}.{number}@{rng.choice(DOMAINS)}"
    saga_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    input = _input(rng, version, number, email)
    timeline = _Timeline(batch, saga_id, created, rng)
    timeline.saga_event(EventType.SAGA_STARTED)
    steps, pivot = version.steps, version.pivot
    context: dict[str, Any] = {}
    failure = None
    status, reason, direction = SagaStatus.COMPLETED, "", ""
    aborted = shape == "aborted"
    if aborted:
        # Exhausted after the pivot, stuck, then aborted by an operator.
        shape = "stuck_exhausted"

    def succeed_forward(upto: int) -> None:
        for step in steps[:upto]:
            output = {"order_id": number, "customer_email": email} if not context else {}
            context[step.name] = output
            timeline.run(step, Direction.FORWARD, StepStatus.SUCCEEDED, output=output)

    if shape == "completed":
        succeed_forward(len(steps))
        timeline.saga_event(EventType.SAGA_COMPLETED)
    elif shape in ("compensated", "stuck_compensation"):
        failing = rng.randrange(1 if shape == "stuck_compensation" else 0, pivot)
        succeed_forward(failing)
        error: dict[str, Any] = {
            "code": rng.choice(REFUSALS),
            "message": "the participant refused",
            "data": {},
        }
        timeline.run(steps[failing], Direction.FORWARD, StepStatus.FAILED, error=error)
        failure = {"step": steps[failing].name, **error}
        timeline.saga_event(EventType.SAGA_COMPENSATING, error["message"], failure)
        undo = [step for step in steps[:failing] if step.compensation]
        if shape == "compensated":
            for step in reversed(undo):
                timeline.run(step, Direction.COMPENSATION, StepStatus.SUCCEEDED, output={})
            status = SagaStatus.COMPENSATED
            timeline.saga_event(EventType.SAGA_COMPENSATED)
        else:
            exhausted = {"code": "TIMEOUT", "message": "the gateway did not answer", "data": {}}
            timeline.run(
                undo[-1], Direction.COMPENSATION, StepStatus.FAILED, error=exhausted, refused=False
            )
            status, reason, direction = (
                SagaStatus.STUCK,
                StuckReason.COMPENSATION_FAILED,
                Direction.COMPENSATION,
            )
    elif shape in ("stuck_exhausted", "stuck_refused"):
        last = len(steps) - 1
        succeed_forward(last)
        refused = shape == "stuck_refused"
        error = {
            "code": "MAILBOX_FULL" if refused else "SMTP_DOWN",
            "message": "the mail server refused" if refused else "the mail server is down",
            "data": {},
        }
        timeline.run(
            steps[last], Direction.FORWARD, StepStatus.FAILED, error=error, refused=refused
        )
        status, direction = SagaStatus.STUCK, Direction.FORWARD
        reason = StuckReason.REFUSED_AFTER_PIVOT if refused else StuckReason.RETRIES_EXHAUSTED
    else:
        # Stuck by the sweeper (deadline or no progress): the waiting run was cancelled.
        waiting = rng.randrange(0, len(steps))
        succeed_forward(waiting)
        timeline.run(steps[waiting], Direction.FORWARD, StepStatus.CANCELLED)
        status, direction = SagaStatus.STUCK, Direction.FORWARD
        reason = StuckReason.NO_PROGRESS if shape == "stuck_no_progress" else StuckReason.TIMED_OUT
    if status == SagaStatus.STUCK:
        timeline.saga_event(EventType.SAGA_STUCK, data={"reason": reason}, actor="sweeper")
    if aborted:
        status = SagaStatus.ABORTED
        timeline.saga_event(EventType.SAGA_ABORTED, "given up: handled by hand", actor="user:ops")
    updated = min(timeline.at, now)
    finished = status != SagaStatus.STUCK
    # The engine copies the failing run onto a stuck saga: here it is the saga's last run.
    cause = batch.runs[-1] if reason else None
    cause_step = next(s.name for s in steps if s.id == cause["step_id"]) if cause else ""
    batch.sagas.append(
        {
            "id": saga_id,
            "definition_id": version.definition.id,
            "definition_name": version.definition.name,
            "status": status,
            "stuck_reason": reason,
            "stuck_direction": direction,
            "stuck_step": cause_step,
            "stuck_error_code": cause["error_code"] if cause else "",
            "stuck_error": (cause["last_error"] or "the saga was flagged stuck") if cause else "",
            "stuck_attempts": cause["attempts"] if cause else 0,
            "input": input,
            "context": context,
            "failure": failure,
            "business_key": str(number),
            "idempotency_key": f"order-{number}-{saga_id.hex[:8]}",
            "created_at": created,
            "updated_at": updated,
            "finished_at": updated if finished else None,
            "deadline": None,
            "owner_id": None,
            "request_id": "",
            "paused": "",
        }
    )


def _pick_shape(rng: random.Random, version: Version) -> str:
    while True:
        shape = rng.choices([name for name, _ in SHAPES], [weight for _, weight in SHAPES])[0]
        if shape in ("compensated",) and version.pivot == 0:
            continue
        if shape == "stuck_compensation" and not (
            version.pivot >= 2 and version.steps[0].compensation
        ):
            continue
        if shape in ("stuck_exhausted", "stuck_refused", "aborted") and (
            version.steps[-1].kind != StepKind.RETRIABLE or version.pivot >= len(version.steps)
        ):
            continue
        return shape


def _input(rng: random.Random, version: Version, number: int, email: str) -> dict[str, Any]:
    schema = version.definition.input_schema or {}
    input: dict[str, Any] = {
        "customer_id": rng.randrange(1, 50_000),
        "products": sorted(rng.sample(range(1, 5_000), rng.randrange(1, 4))),
        "total": f"{rng.randrange(100, 50_000) / 100:.2f}",
        "payment_method": rng.choice(METHODS),
    }
    # A definition that takes more than its schema names (or has none) gets the customer's email
    # in its input too; place_order's schema refuses extra keys, so its email is in the context.
    if schema.get("additionalProperties", True) is not False:
        input["customer_email"] = email
        input["order_id"] = number
    return input


class _Timeline:
    """Appends a saga's runs and events, each a little later than the one before."""

    def __init__(
        self, batch: Batch, saga_id: uuid.UUID, start: datetime, rng: random.Random
    ) -> None:
        self.batch, self.saga_id, self.at, self.rng = batch, saga_id, start, rng

    def tick(self) -> datetime:
        self.at += timedelta(milliseconds=self.rng.randrange(5, 400))
        return self.at

    def saga_event(
        self,
        type: str,
        message: str = "",
        data: dict[str, Any] | None = None,
        *,
        actor: str = "engine",
        run: int | None = None,
        attempt: int | None = None,
    ) -> None:
        self.batch.events.append(
            {
                "saga_id": self.saga_id,
                "run": run,
                "type": type,
                "at": self.tick(),
                "attempt": attempt,
                "actor": actor,
                "message": message,
                "data": data or {},
            }
        )

    def run(
        self,
        step: StepDefinition,
        direction: str,
        status: str,
        *,
        output: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        refused: bool = True,
    ) -> None:
        number = len(self.batch.runs)
        created = self.tick()
        self.saga_event(EventType.STEP_SCHEDULED, run=number, data={"due_at": created.isoformat()})
        attempts = 0
        failure_kind = ""
        if status != StepStatus.CANCELLED:
            tries = 1 if status == StepStatus.SUCCEEDED or refused else step.max_attempts
            if status == StepStatus.FAILED and not refused:
                failure_kind = FailureKind.EXHAUSTED
            elif status == StepStatus.FAILED:
                failure_kind = FailureKind.REFUSED
            for attempt in range(1, tries + 1):
                attempts = attempt
                self.saga_event(EventType.STEP_STARTED, run=number, attempt=attempt)
                if attempt < tries:
                    self.saga_event(
                        EventType.ATTEMPT_FAILED,
                        error["message"] if error else "",
                        error,
                        run=number,
                        attempt=attempt,
                    )
        if status == StepStatus.SUCCEEDED:
            self.saga_event(
                EventType.STEP_SUCCEEDED, data={"output": output}, run=number, attempt=attempts
            )
        elif status == StepStatus.CANCELLED:
            self.saga_event(
                EventType.STEP_CANCELLED, "the saga was flagged stuck", run=number, actor="sweeper"
            )
        else:
            assert error is not None
            type = EventType.STEP_REFUSED if refused else EventType.STEP_EXHAUSTED
            self.saga_event(type, error["message"], error, run=number, attempt=attempts)
        self.batch.runs.append(
            {
                "saga_id": self.saga_id,
                "step_id": step.id,
                "direction": direction,
                "status": status,
                "attempts": attempts,
                "due_at": created,
                "token": uuid.UUID(int=self.rng.getrandbits(128)),
                "output": output if status == StepStatus.SUCCEEDED else None,
                "last_error": error["message"] if error else "",
                "error_code": error["code"] if error else "",
                "failure_kind": failure_kind,
                "generation": 0,
                "created_at": created,
                "finished_at": self.at,
            }
        )


SAGA_COLUMNS = (
    "id",
    "definition_id",
    "definition_name",
    "status",
    "stuck_reason",
    "stuck_direction",
    "stuck_step",
    "stuck_error_code",
    "stuck_error",
    "stuck_attempts",
    "input",
    "context",
    "failure",
    "business_key",
    "idempotency_key",
    "created_at",
    "updated_at",
    "finished_at",
    "deadline",
    "owner_id",
    "request_id",
    "paused",
)
RUN_COLUMNS = (
    "saga_id",
    "step_id",
    "direction",
    "status",
    "attempts",
    "due_at",
    "token",
    "output",
    "last_error",
    "error_code",
    "failure_kind",
    "created_at",
    "finished_at",
    "generation",
)
EVENT_COLUMNS = ("saga_id", "type", "at", "attempt", "actor", "message", "data")
JSON_COLUMNS = {"input", "context", "failure", "output", "data"}


def _json(row: dict[str, Any], columns: tuple[str, ...]) -> Iterator[Any]:
    for column in columns:
        value = row[column]
        yield json.dumps(value) if column in JSON_COLUMNS and value is not None else value


def _copy_batch(batch: Batch) -> None:
    """Write a batch with three COPYs; run ids come from the table's own sequence."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('bpm_steprun', 'id'))"
            " FROM generate_series(1, %s)",
            [len(batch.runs)],
        )
        run_ids = [row[0] for row in cursor.fetchall()]
        copies = (
            (
                "bpm_sagainstance",
                SAGA_COLUMNS,
                (tuple(_json(s, SAGA_COLUMNS)) for s in batch.sagas),
            ),
            (
                "bpm_steprun",
                ("id", *RUN_COLUMNS),
                (
                    (run_id, *_json(run, RUN_COLUMNS))
                    for run_id, run in zip(run_ids, batch.runs, strict=True)
                ),
            ),
            (
                "bpm_sagaevent",
                ("step_run_id", *EVENT_COLUMNS),
                (
                    (
                        None if event["run"] is None else run_ids[event["run"]],
                        *_json(event, EVENT_COLUMNS),
                    )
                    for event in batch.events
                ),
            ),
        )
        for table, columns, rows in copies:
            statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with cursor.cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)


def _insert_batch(batch: Batch) -> None:
    """Write a batch with bulk_create (the database returns the runs' ids for the events)."""
    SagaInstance.objects.bulk_create([SagaInstance(**saga) for saga in batch.sagas], batch_size=500)
    runs = StepRun.objects.bulk_create([StepRun(**run) for run in batch.runs], batch_size=500)
    SagaEvent.objects.bulk_create(
        [
            SagaEvent(
                step_run_id=None if event["run"] is None else runs[event["run"]].pk,
                **{column: event[column] for column in EVENT_COLUMNS},
            )
            for event in batch.events
        ],
        batch_size=500,
    )
