"""Saga definitions, instances, step runs, their timeline and the barrier.

Each transition changes one row and logs its SagaEvent; the engine (bpm/engine.py, the only
writer of saga and step-run rows) holds the saga's row lock, saves the rows and writes the logged
events in one insert, in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

from bpm import clock, log_context
from bpm.declarations import RetryPolicy, StepDeclaration
from bpm.states import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    BatchAction,
    BatchItemStatus,
    BatchStatus,
    DefinitionEventType,
    DefinitionStatus,
    Direction,
    EventType,
    FailureKind,
    SagaStatus,
    StepKind,
    StepStatus,
    StuckReason,
)


class SagaDefinition(models.Model):
    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    input_schema = models.JSONField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # Secure by default: a row made by anything but a deployment or an approval starts no saga.
    status = models.CharField(
        max_length=16, choices=DefinitionStatus.choices, default=DefinitionStatus.DRAFT
    )
    # Hash of the code declaration this version was made from; empty for versions made in admin.
    fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    composed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    change_reason = models.TextField(blank=True, help_text="why the composer made this version")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="the designer who approved or rejected this draft",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True)

    class Meta:
        ordering = ("name", "-version")
        permissions = [
            (
                "compose_sagadefinition",
                "Can compose saga definition versions and review other designers' drafts",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=("name", "version"), name="definition_name_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_draft(self) -> bool:
        return self.status == DefinitionStatus.DRAFT

    @property
    def is_published(self) -> bool:
        return self.status == DefinitionStatus.PUBLISHED

    def log(self, type: str, actor: str, comment: str = "") -> DefinitionEvent:
        """Append an entry to this version's audit trail."""
        return DefinitionEvent.objects.create(
            definition=self, type=type, actor=actor, comment=comment, at=clock.now()
        )


class DefinitionEvent(models.Model):
    """The audit trail of a version: who composed, approved, rejected or deployed it, and why."""

    definition = models.ForeignKey(
        SagaDefinition, on_delete=models.CASCADE, related_name="audit_events"
    )
    type = models.CharField(max_length=16, choices=DefinitionEventType.choices)
    at = models.DateTimeField(default=clock.now)
    actor = models.CharField(max_length=200)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ("at", "id")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.type}"


class StepDefinition(models.Model):
    definition = models.ForeignKey(SagaDefinition, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.SlugField(max_length=100)
    action = models.CharField(max_length=200)
    compensation = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=StepKind.choices, default=StepKind.COMPENSATABLE)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    initial_backoff = models.FloatField(default=1.0, help_text="seconds")
    backoff_multiplier = models.FloatField(default=2.0)
    max_backoff = models.FloatField(default=60.0, help_text="seconds")
    jitter = models.FloatField(default=0.1, help_text="fraction of the delay, 0 to 1")
    timeout = models.FloatField(default=30.0, help_text="seconds")
    queue = models.CharField(max_length=100, default="default")

    class Meta:
        ordering = ("definition", "position")
        constraints = [
            models.UniqueConstraint(fields=("definition", "position"), name="step_position"),
            models.UniqueConstraint(fields=("definition", "name"), name="step_name"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            initial_backoff=self.initial_backoff,
            multiplier=self.backoff_multiplier,
            max_backoff=self.max_backoff,
            jitter=self.jitter,
        )

    def as_declaration(self) -> StepDeclaration:
        """Return this row as the declaration the validator understands."""
        return StepDeclaration(
            name=self.name,
            action=self.action,
            compensation=self.compensation,
            kind=self.kind,
            retry=self.retry_policy,
            timeout=self.timeout,
            queue=self.queue,
        )

    def handler_name(self, direction: str) -> str:
        return self.action if direction == Direction.FORWARD else self.compensation


class SagaInstance(FSMModelMixin, models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by saga_version_created (and definition_name by saga_definition_created): the
    # default single-column indexes served no query those do not.
    definition = models.ForeignKey(
        SagaDefinition, on_delete=models.PROTECT, related_name="instances", db_index=False
    )
    # Copied from the definition so idempotency keys are unique per name across versions.
    definition_name = models.SlugField(max_length=100, db_index=False)
    status = FSMField(
        max_length=16, choices=SagaStatus.choices, default=SagaStatus.RUNNING, protected=True
    )
    stuck_reason = models.CharField(max_length=32, choices=StuckReason.choices, blank=True)
    # Which way the saga was going when it got stuck: an operator retry resumes that way.
    stuck_direction = models.CharField(max_length=16, choices=Direction.choices, blank=True)
    input = models.JSONField(default=dict)
    context = models.JSONField(default=dict, help_text="outputs of finished steps, by step name")
    # What made the saga compensate: the refusing step, its code and message.
    failure = models.JSONField(null=True, blank=True)
    # Indexed by saga_business_key: searched by equality only, so without PostgreSQL's LIKE index.
    business_key = models.CharField(max_length=200, blank=True)
    # NULL, not "", when absent: the unique constraint applies only to sagas that have a key.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(default=clock.now, db_index=True)
    updated_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    # The X-Request-ID of the request that started it, "" when code or a command did: taken from
    # the log context when the row is made, so workers log the request's id with its steps.
    request_id = models.CharField(
        max_length=128, blank=True, editable=False, default=log_context.current_request_id
    )
    # The user whose request started it (bpm.ownership); NULL when code or a command started it.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # saga_owner_created
    )

    class Meta:
        ordering = ("-created_at",)
        permissions = [
            ("start_saga", "Can start a saga"),
            ("retry_saga", "Can retry a stuck saga"),
            ("skip_saga", "Can skip a stuck saga's failed step"),
            ("compensate_saga", "Can compensate a stuck saga"),
            ("abort_saga", "Can abort a stuck saga"),
            ("migrate_saga", "Can move a running or stuck saga to another version"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=("definition_name", "idempotency_key"),
                condition=Q(idempotency_key__isnull=False),
                name="saga_idempotency_key",
            )
        ]
        # Each index serves a query named in docs/benchmarks.md ("Data at scale"); every write
        # pays for each, so one that no query uses is dropped.
        indexes = [
            # The stuck list (oldest change first), the saga list by status sorted by change, and
            # the sweeper's stalled sagas (active, unchanged since a cutoff).
            models.Index(fields=("status", "updated_at"), name="saga_status_updated"),
            # The dashboard's saga list filters on these and pages through them by creation time.
            models.Index(fields=("status", "created_at"), name="saga_status_created"),
            models.Index(fields=("definition_name", "created_at"), name="saga_definition_created"),
            # Filtering by a version: its own sagas only, however many newer ones there are.
            models.Index(fields=("definition", "created_at"), name="saga_version_created"),
            # Only stuck (and aborted) sagas have a reason: the other 95 % stay out of it.
            models.Index(
                fields=("stuck_reason", "created_at"),
                name="saga_reason_created",
                condition=~Q(stuck_reason=""),
            ),
            # Recent activity, the list sorted by change, and finished sagas past the rollup's
            # watermark (bpm.totals: a saga's updated_at is never before its finished_at).
            models.Index(fields=("updated_at",), name="saga_updated"),
            # Searching by key alone: the unique constraint leads with the definition's name.
            models.Index(fields=("idempotency_key",), name="saga_idempotency_key_search"),
            # Retention finds the oldest finished sagas with this, never reading an active one.
            models.Index(
                fields=("finished_at",),
                condition=Q(status__in=FINISHED_STATUSES),
                name="saga_finished_at",
            ),
            models.Index(fields=("business_key",), name="saga_business_key"),
            # A client's own sagas, newest first (the API); sagas code started have no owner.
            models.Index(
                fields=("owner", "created_at"),
                name="saga_owner_created",
                condition=Q(owner__isnull=False),
            ),
            # Exact counts of the unfinished statuses per version, from the index alone
            # (bpm.totals.UNFINISHED; finished ones are counted by the rollup).
            models.Index(
                fields=("status", "definition"),
                name="saga_unfinished_status",
                condition=Q(status__in=("RUNNING", "COMPENSATING", "STUCK")),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.definition_name} {self.id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def log(self, type: str, actor: str, message: str = "", **fields: Any) -> SagaEvent:
        """Append an event to this saga's timeline, to be written with the saga's rows.

        The engine writes every event of a transaction in one insert when it saves the saga
        (`take_events`), so a transition and its event still commit together.
        """
        self.updated_at = clock.now()
        event = SagaEvent(
            saga=self, type=type, actor=actor, message=message, at=self.updated_at, **fields
        )
        self.unsaved_events.append(event)
        return event

    @property
    def unsaved_events(self) -> list[SagaEvent]:
        """Return the events logged since the engine last wrote this saga's rows."""
        events: list[SagaEvent] = self.__dict__.setdefault("_unsaved_events", [])
        return events

    def take_events(self) -> list[SagaEvent]:
        """Return the unsaved events and forget them (the caller writes them)."""
        return self.__dict__.pop("_unsaved_events", [])

    @transition(field=status, source=SagaStatus.RUNNING, target=SagaStatus.COMPLETED)
    def complete(self, *, actor: str) -> None:
        self.finished_at = clock.now()
        self.log(EventType.SAGA_COMPLETED, actor)

    @transition(field=status, source=SagaStatus.RUNNING, target=SagaStatus.COMPENSATING)
    def start_compensating(self, *, actor: str, failure: dict[str, Any]) -> None:
        self.failure = failure
        self.log(EventType.SAGA_COMPENSATING, actor, failure.get("message", ""), data=failure)

    @transition(field=status, source=SagaStatus.COMPENSATING, target=SagaStatus.COMPENSATED)
    def finish_compensating(self, *, actor: str) -> None:
        self.finished_at = clock.now()
        self.log(EventType.SAGA_COMPENSATED, actor)

    @transition(field=status, source=list(ACTIVE_STATUSES), target=SagaStatus.STUCK)
    def get_stuck(self, *, actor: str, reason: str, message: str = "") -> None:
        self.stuck_direction = (
            Direction.COMPENSATION if self.status == SagaStatus.COMPENSATING else Direction.FORWARD
        )
        self.stuck_reason = reason
        self.log(EventType.SAGA_STUCK, actor, message, data={"reason": reason})

    @transition(field=status, source=SagaStatus.STUCK, target=SagaStatus.COMPLETED)
    def complete_after_flag(self, *, actor: str) -> None:
        """Complete a saga flagged stuck while its last step was committing: the runs win."""
        self.finished_at = clock.now()
        message = f"every step finished after the saga was flagged {self.stuck_reason}"
        self._clear_stuck()
        self.log(EventType.SAGA_COMPLETED, actor, message)

    @transition(field=status, source=SagaStatus.STUCK, target=SagaStatus.COMPENSATED)
    def compensate_after_flag(self, *, actor: str) -> None:
        """Close a saga flagged stuck while its last compensation was committing."""
        self.finished_at = clock.now()
        message = f"every compensation finished after the saga was flagged {self.stuck_reason}"
        self._clear_stuck()
        self.log(EventType.SAGA_COMPENSATED, actor, message)

    @transition(field=status, source=SagaStatus.STUCK, target=SagaStatus.RUNNING)
    def resume_forward(self, *, actor: str, reason: str) -> None:
        self._clear_stuck()
        self.log(EventType.SAGA_RESUMED, actor, reason, data={"direction": Direction.FORWARD})

    @transition(field=status, source=SagaStatus.STUCK, target=SagaStatus.COMPENSATING)
    def resume_compensating(self, *, actor: str, reason: str, failure: dict[str, Any]) -> None:
        self._clear_stuck()
        if self.failure is None:
            self.failure = failure
        self.log(EventType.SAGA_RESUMED, actor, reason, data={"direction": Direction.COMPENSATION})

    @transition(field=status, source=SagaStatus.STUCK, target=SagaStatus.ABORTED)
    def abort(self, *, actor: str, reason: str) -> None:
        self.finished_at = clock.now()
        self.log(EventType.SAGA_ABORTED, actor, reason)

    def _clear_stuck(self) -> None:
        self.stuck_reason = ""
        self.stuck_direction = ""


class StepRun(FSMModelMixin, models.Model):
    saga = models.ForeignKey(SagaInstance, on_delete=models.CASCADE, related_name="step_runs")
    step = models.ForeignKey(StepDefinition, on_delete=models.PROTECT, related_name="runs")
    direction = models.CharField(max_length=16, choices=Direction.choices)
    status = FSMField(
        max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING, protected=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(default=clock.now)
    # The fence token: a doorbell must carry the current one, and it changes with every attempt.
    token = models.UUIDField(default=uuid.uuid4)
    lease_owner = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failure_kind = models.CharField(max_length=16, choices=FailureKind.choices, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        # The sweeper's queries: only PENDING and RUNNING runs, never the finished millions.
        indexes = [
            models.Index(
                fields=("due_at",), name="steprun_pending_due", condition=Q(status="PENDING")
            ),
            models.Index(
                fields=("lease_expires_at",),
                name="steprun_running_lease",
                condition=Q(status="RUNNING"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step.name} ({self.direction.lower()})"

    @property
    def idempotency_key(self) -> str:
        """Return the key shared by every attempt of this step in this direction."""
        return f"{self.saga_id}:{self.step.name}:{self.direction.lower()}"

    def log(self, type: str, actor: str, message: str = "", **fields: Any) -> SagaEvent:
        """Append an event about this run to its saga's timeline."""
        fields.setdefault("attempt", self.attempts or None)
        return self.saga.log(type, actor, message, step_run=self, **fields)

    def schedule(self, *, actor: str) -> None:
        """Record that this new run is waiting for its doorbell."""
        self.log(EventType.STEP_SCHEDULED, actor, data={"due_at": self.due_at.isoformat()})

    @transition(field=status, source=StepStatus.PENDING, target=StepStatus.RUNNING)
    def claim(self, *, actor: str, owner: uuid.UUID, lease_until: datetime) -> None:
        self.attempts += 1
        self.lease_owner = owner
        self.lease_expires_at = lease_until
        self.log(EventType.STEP_STARTED, actor)

    def redrive(self, *, actor: str, message: str) -> None:
        """Give this PENDING run a new fence token: only the doorbell rung now may claim it."""
        assert self.status == StepStatus.PENDING
        self.token = uuid.uuid4()
        self.log(EventType.REDRIVEN, actor, message)

    @transition(field=status, source=StepStatus.RUNNING, target=StepStatus.SUCCEEDED)
    def succeed(self, *, actor: str, output: dict[str, Any], message: str = "") -> None:
        self.output = output
        self._release()
        self.log(EventType.STEP_SUCCEEDED, actor, message, data={"output": output})

    @transition(field=status, source=StepStatus.RUNNING, target=StepStatus.PENDING)
    def retry_later(self, *, actor: str, error: dict[str, Any], due_at: datetime) -> None:
        self.last_error = error["message"]
        self.due_at = due_at
        self.token = uuid.uuid4()
        self._release(finished=False)
        self.log(
            EventType.ATTEMPT_FAILED,
            actor,
            error["message"],
            data={**error, "retry_at": due_at.isoformat()},
        )

    @transition(field=status, source=StepStatus.RUNNING, target=StepStatus.FAILED)
    def refuse(self, *, actor: str, error: dict[str, Any]) -> None:
        self.last_error = error["message"]
        self.failure_kind = FailureKind.REFUSED
        self._release()
        self.log(EventType.STEP_REFUSED, actor, error["message"], data=error)

    @transition(field=status, source=StepStatus.RUNNING, target=StepStatus.FAILED)
    def exhaust(self, *, actor: str, error: dict[str, Any]) -> None:
        self.last_error = error["message"]
        self.failure_kind = FailureKind.EXHAUSTED
        self._release()
        self.log(EventType.STEP_EXHAUSTED, actor, error["message"], data=error)

    @transition(
        field=status, source=[StepStatus.FAILED, StepStatus.CANCELLED], target=StepStatus.SKIPPED
    )
    def skip(self, *, actor: str, reason: str, output: dict[str, Any]) -> None:
        self.output = output
        self.finished_at = clock.now()
        self.log(EventType.STEP_SKIPPED, actor, reason, data={"output": output})

    @transition(field=status, source=StepStatus.PENDING, target=StepStatus.CANCELLED)
    def cancel(self, *, actor: str, reason: str) -> None:
        self.finished_at = clock.now()
        self.log(EventType.STEP_CANCELLED, actor, reason)

    def _release(self, *, finished: bool = True) -> None:
        self.lease_owner = None
        self.lease_expires_at = None
        if finished:
            self.finished_at = clock.now()


class SagaEvent(models.Model):
    # event_saga_at leads with the saga: the FK's own index would be a second copy.
    saga = models.ForeignKey(
        SagaInstance, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    step_run = models.ForeignKey(
        StepRun, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    type = models.CharField(max_length=32, choices=EventType.choices)
    at = models.DateTimeField(default=clock.now)
    attempt = models.PositiveSmallIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("at", "id")
        indexes = [models.Index(fields=("saga", "at"), name="event_saga_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S.%f} {self.type}"


class Barrier(models.Model):
    """One row per (saga, step, operation) a transactional handler committed (DTM's barrier)."""

    class Operation(models.TextChoices):
        ACTION = "ACTION", "action"
        COMPENSATION = "COMPENSATION", "compensation"

    # barrier_unique leads with the saga: the FK's own index would be a second copy.
    saga = models.ForeignKey(
        SagaInstance, on_delete=models.CASCADE, related_name="barriers", db_index=False
    )
    step = models.CharField(max_length=100)
    operation = models.CharField(max_length=16, choices=Operation.choices)
    # True when the row was written by a compensation to block an action that never ran.
    placeholder = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("saga", "step", "operation"), name="barrier_unique")
        ]

    def __str__(self) -> str:
        return f"{self.step} {self.operation.lower()}"


class FinishedRollup(models.Model):
    """The watermark of the finished-saga totals: sagas finished before `through` are counted in
    FinishedCount; the ones after it are counted live (bpm.totals). One row, id 1."""

    through = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"finished sagas counted through {self.through}"


class FinishedCount(models.Model):
    """How many sagas of a definition version ever finished in a status, up to the watermark."""

    rollup = models.ForeignKey(FinishedRollup, on_delete=models.CASCADE, related_name="counts")
    definition = models.ForeignKey(SagaDefinition, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=SagaStatus.choices)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("rollup", "definition", "status"), name="finished_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.definition_id} {self.status}: {self.count}"


class QueueAccess(models.Model):
    """No rows: holds the permission to operate RQ's own pages (django-rq), given to no group."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("manage_queues", "Can operate RQ's queues, jobs and workers")]
        verbose_name = "RQ queue access"

    def __str__(self) -> str:
        return "RQ queue access"


def actor_for_user(user: Any) -> str:
    """Return the actor string recorded for an operator."""
    return f"user:{user.get_username()}"


class Batch(models.Model):
    """One operator action applied to every saga a saved filter matched (bpm/batches.py)."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="the operator the sagas are acted on as; empty when a command started it",
    )
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=clock.now)
    # The heartbeat: every saga done moves it; the sweeper rings again for a batch gone quiet.
    updated_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The saga list's validated query string (without sort and paging), replayable as a link.
    filter_query = models.TextField(blank=True)
    action = models.CharField(max_length=16, choices=BatchAction.choices)
    patch = models.JSONField(null=True, blank=True, help_text="JSON merge patch for the input")
    output = models.JSONField(null=True, blank=True, help_text="the skipped step's output")
    # A migrate batch's target: the version its sagas move to (bpm/versions.py).
    target = models.ForeignKey(
        SagaDefinition,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="migrate only: the definition version the sagas move to",
    )
    reason = models.TextField()
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    cancelled_by = models.CharField(max_length=200, blank=True)
    matched = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("status", "updated_at"), name="batch_status_updated")]

    def __str__(self) -> str:
        return f"batch {self.pk}: {self.action} {self.matched} sagas"

    @property
    def is_open(self) -> bool:
        return self.status in (BatchStatus.PENDING, BatchStatus.RUNNING)

    @property
    def settled(self) -> int:
        return self.done + self.refused + self.failed

    @property
    def percent(self) -> int:
        return 100 if not self.matched else self.settled * 100 // self.matched


class BatchItem(models.Model):
    """A saga of a batch and what the batch did to it, written with the action's own commit."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    # No foreign key: retention may delete a saga long before anyone deletes its batch.
    saga_id = models.UUIDField()
    status = models.CharField(
        max_length=16, choices=BatchItemStatus.choices, default=BatchItemStatus.PENDING
    )
    message = models.TextField(blank=True)
    plan = models.JSONField(default=list, blank=True)
    saga_status = models.CharField(max_length=16, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=("batch", "saga_id"), name="batch_item_saga")]
        indexes = [models.Index(fields=("batch", "status", "id"), name="batch_item_status")]

    def __str__(self) -> str:
        return f"{self.saga_id} in batch {self.batch_id}: {self.status}"
