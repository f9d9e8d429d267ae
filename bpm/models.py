"""Saga definitions, instances, step runs, their timeline and the barrier.

Each transition changes one row and logs its SagaEvent; the engine (bpm/engine.py, the only
writer of saga and step-run rows) holds the saga's row lock, saves the rows and writes the logged
events in one insert, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
    PauseScope,
    SagaStatus,
    StepKind,
    StepStatus,
    StuckReason,
    WaitKind,
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
    # Set while an operator holds every saga of this version: new sagas start paused too.
    paused_at = models.DateTimeField(null=True, blank=True)

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
    # The names of the steps this one waits for: null means the step before it (by position),
    # [] that it starts with the saga (bpm/graph.py).
    after = models.JSONField(null=True, blank=True)
    # An HTTP call made instead of a registered handler (bpm/http_calls.py); the action or
    # compensation field then holds its label.
    action_http = models.JSONField(null=True, blank=True)
    compensation_http = models.JSONField(null=True, blank=True)
    # A wait step's wait ({} for a step that runs its action and is done): see bpm/waits.py.
    wait = models.JSONField(default=dict, blank=True)

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
            after=self.after,
            action_http=self.action_http,
            compensation_http=self.compensation_http,
            wait=self.wait or {},
        )

    def handler_name(self, direction: str) -> str:
        return self.action if direction == Direction.FORWARD else self.compensation

    def http_call(self, direction: str) -> dict[str, Any] | None:
        """Return the HTTP call this step makes in `direction`, or None for a handler."""
        return self.action_http if direction == Direction.FORWARD else self.compensation_http


class RememberedRow(models.Model):
    """A row that remembers the column values it was read with, so the engine writes back only
    the columns that changed since (bpm.engine._update_row).

    JSON values are remembered as their own copy, so a change made inside a dict in place is
    seen too. Any other save forgets the values: the row may then differ from them.
    """

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.forget()
        super().save(*args, **kwargs)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.forget()
        super().refresh_from_db(*args, **kwargs)

    def remember(self, loaded: dict[str, Any]) -> None:
        """Keep these values (by attname), as read from the database, independent of the row's."""
        self.__dict__[LOADED] = loaded

    def forget(self) -> None:
        self.__dict__.pop(LOADED, None)

    def changed_fields(self) -> list[models.Field[Any, Any]] | None:
        """Return the concrete columns whose value differs from the remembered one, in the
        model's order; None when nothing is remembered (every column must be written)."""
        loaded: dict[str, Any] | None = self.__dict__.get(LOADED)
        if loaded is None:
            return None
        values = self.__dict__
        return [
            f
            for f in self._meta.concrete_fields
            if not f.primary_key and values[f.attname] != loaded[f.attname]
        ]


LOADED = "_bpm_loaded"


# A stuck saga keeps this much of its failing run's error (lists show it, search reads it).
STUCK_ERROR_KEPT = 1000


class SagaInstance(FSMModelMixin, RememberedRow):
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
    # The cause, copied from the failing run when the saga got stuck, so lists show it and the
    # overview groups by it from one index (saga_stuck_cause) without reading the runs.
    stuck_step = models.CharField(max_length=100, blank=True)
    stuck_error_code = models.CharField(
        max_length=100, blank=True, help_text="the error's code, or the exception's type"
    )
    stuck_error = models.TextField(blank=True, help_text="the failing run's last error message")
    stuck_attempts = models.PositiveSmallIntegerField(default=0)
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
    # The operator who took the saga on (bpm.services.saga_assign), and when someone acknowledged
    # it: who is on it, for the lists' "mine" and the timeline. Not progress: no updated_at.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # saga_assignee_status
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # While set, no new step starts: running ones finish, their successors wait (bpm.engine).
    paused = models.CharField(
        max_length=16, choices=PauseScope.choices, blank=True, default=PauseScope.NONE
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
            # An operator's own sagas ("mine"), by status.
            models.Index(
                fields=("assignee", "status"),
                name="saga_assignee_status",
                condition=Q(assignee__isnull=False),
            ),
            models.Index(
                fields=("status", "definition"),
                name="saga_unfinished_status",
                condition=Q(status__in=("RUNNING", "COMPENSATING", "STUCK")),
            ),
            # The overview's groups of stuck sagas by cause (an index-only scan of the stuck
            # ones), their newest examples, and the saga list filtered to one group.
            models.Index(
                fields=(
                    "definition",
                    "stuck_step",
                    "stuck_reason",
                    "stuck_error_code",
                    "updated_at",
                    "id",
                ),
                name="saga_stuck_cause",
                condition=Q(status="STUCK"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.definition_name} {self.id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def log(
        self,
        type: str,
        actor: str,
        message: str = "",
        *,
        step_run: StepRun | None = None,
        attempt: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> LoggedEvent:
        """Append an event to this saga's timeline, to be written with the saga's rows.

        The engine writes every event of a transaction in one insert when it saves the saga
        (`take_events`), so a transition and its event still commit together.
        """
        self.updated_at = clock.now()
        event = LoggedEvent(
            self,
            step_run,
            type,
            self.updated_at,
            attempt,
            actor,
            message,
            {} if data is None else data,
        )
        self.unsaved_events.append(event)
        return event

    @property
    def unsaved_events(self) -> list[LoggedEvent]:
        """Return the events logged since the engine last wrote this saga's rows."""
        events: list[LoggedEvent] = self.__dict__.setdefault("_unsaved_events", [])
        return events

    def take_events(self) -> list[LoggedEvent]:
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
    def get_stuck(
        self, *, actor: str, reason: str, message: str = "", cause: StepRun | None = None
    ) -> None:
        self.stuck_direction = (
            Direction.COMPENSATION if self.status == SagaStatus.COMPENSATING else Direction.FORWARD
        )
        self.stuck_reason = reason
        self.stuck_step = cause.step.name if cause else ""
        self.stuck_error_code = cause.error_code if cause else ""
        # A run cancelled or still waiting may have no error: the flag's message says why.
        self.stuck_error = ((cause.last_error if cause else "") or message)[:STUCK_ERROR_KEPT]
        self.stuck_attempts = cause.attempts if cause else 0
        # Stuck again: whoever acknowledged the last episode has not seen this one.
        self.acknowledged_at = None
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

    @transition(field=status, source=SagaStatus.COMPLETED, target=SagaStatus.RUNNING)
    def reopen(self, *, actor: str, reason: str) -> None:
        """Set a completed saga running again: an operator reruns it from a step."""
        self.finished_at = None
        self.log(EventType.SAGA_REOPENED, actor, reason, data={"direction": Direction.FORWARD})

    @transition(field=status, source=SagaStatus.STUCK, target=SagaStatus.ABORTED)
    def abort(self, *, actor: str, reason: str) -> None:
        self.finished_at = clock.now()
        self.log(EventType.SAGA_ABORTED, actor, reason)

    def pause(self, *, actor: str, reason: str, scope: str) -> None:
        """Hold the saga: no new step starts until it is resumed."""
        self.paused = scope
        self.log(EventType.SAGA_PAUSED, actor, reason, data={"scope": scope})

    def unpause(self, *, actor: str, reason: str, scope: str) -> None:
        """Lift a pause of this scope (a saga's own pause outlives its definition's)."""
        self.paused = scope
        self.log(EventType.SAGA_UNPAUSED, actor, reason, data={"still": scope})

    def _clear_stuck(self) -> None:
        self.stuck_reason = ""
        self.stuck_direction = ""
        self.stuck_step = ""
        self.stuck_error_code = ""
        self.stuck_error = ""
        self.stuck_attempts = 0


class StepRun(FSMModelMixin, RememberedRow):
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
    # The last error's code (StepFailed.code) or, for a fault, the exception's type.
    error_code = models.CharField(max_length=100, blank=True)
    failure_kind = models.CharField(max_length=16, choices=FailureKind.choices, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # How many operator reruns this step has been through: each gets its own idempotency key and
    # barrier row, so a rerun sends the confirmation again instead of being deduplicated.
    generation = models.PositiveSmallIntegerField(default=0)

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
            # The sweeper's expired waits.
            models.Index(
                fields=("due_at",), name="steprun_waiting_due", condition=Q(status="WAITING")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step.name} ({self.direction.lower()})"

    @property
    def idempotency_key(self) -> str:
        """Return the key shared by every attempt of this step in this direction (and rerun)."""
        key = f"{self.saga_id}:{self.step.name}:{self.direction.lower()}"
        return f"{key}:rerun-{self.generation}" if self.generation else key

    @property
    def barrier_step(self) -> str:
        """Return the name this run's operations take in the barrier (one per rerun)."""
        name: str = self.step.name
        return f"{name}#rerun-{self.generation}" if self.generation else name

    def log(
        self, type: str, actor: str, message: str = "", *, data: dict[str, Any] | None = None
    ) -> LoggedEvent:
        """Append an event about this run to its saga's timeline."""
        return self.saga.log(
            type, actor, message, step_run=self, attempt=self.attempts or None, data=data
        )

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

    @transition(field=status, source=StepStatus.RUNNING, target=StepStatus.WAITING)
    def wait(self, *, actor: str, until: datetime, message: str, data: dict[str, Any]) -> None:
        """Park this run until its signal, token or person answers, or `until` passes."""
        self.due_at = until
        self._release(finished=False)
        self.log(EventType.STEP_WAITING, actor, message, data=data)

    @transition(
        field=status, source=[StepStatus.RUNNING, StepStatus.WAITING], target=StepStatus.SUCCEEDED
    )
    def succeed(self, *, actor: str, output: dict[str, Any], message: str = "") -> None:
        self.output = output
        self._release()
        self.log(EventType.STEP_SUCCEEDED, actor, message, data={"output": output})

    @transition(field=status, source=StepStatus.RUNNING, target=StepStatus.PENDING)
    def retry_later(self, *, actor: str, error: dict[str, Any], due_at: datetime) -> None:
        self.last_error = error["message"]
        self.error_code = error_code_of(error)
        self.due_at = due_at
        self.token = uuid.uuid4()
        self._release(finished=False)
        self.log(
            EventType.ATTEMPT_FAILED,
            actor,
            error["message"],
            data={**error, "retry_at": due_at.isoformat()},
        )

    @transition(
        field=status, source=[StepStatus.RUNNING, StepStatus.WAITING], target=StepStatus.FAILED
    )
    def refuse(self, *, actor: str, error: dict[str, Any]) -> None:
        self.last_error = error["message"]
        self.error_code = error_code_of(error)
        self.failure_kind = FailureKind.REFUSED
        self._release()
        self.log(EventType.STEP_REFUSED, actor, error["message"], data=error)

    @transition(
        field=status, source=[StepStatus.RUNNING, StepStatus.WAITING], target=StepStatus.FAILED
    )
    def exhaust(self, *, actor: str, error: dict[str, Any]) -> None:
        self.last_error = error["message"]
        self.error_code = error_code_of(error)
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
    def supersede(self, *, actor: str, reason: str) -> None:
        """Stand for a finished run that a rerun will run again (the planner runs it anew)."""
        self.finished_at = clock.now()
        self.log(EventType.STEP_SUPERSEDED, actor, reason)

    @transition(
        field=status, source=[StepStatus.PENDING, StepStatus.WAITING], target=StepStatus.CANCELLED
    )
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


@dataclass(slots=True)
class LoggedEvent:
    """An event logged on a saga and not written yet: SagaEvent's columns, without the model.

    A step logs a few; the engine writes them from these values in one insert (a model instance
    for each would cost more than the rest of the event). `as_model` makes the row for the ORM.
    """

    saga: SagaInstance
    step_run: StepRun | None
    type: str
    at: datetime
    attempt: int | None
    actor: str
    message: str
    data: dict[str, Any]

    def columns(self) -> dict[str, Any]:
        """Return the values by SagaEvent column (attname); the run's id once it has one."""
        return {
            "saga_id": self.saga.pk,
            "step_run_id": None if self.step_run is None else self.step_run.pk,
            "type": self.type,
            "at": self.at,
            "attempt": self.attempt,
            "actor": self.actor,
            "message": self.message,
            "data": self.data,
        }

    def as_model(self) -> SagaEvent:
        return SagaEvent(
            saga=self.saga,
            step_run=self.step_run,
            type=self.type,
            at=self.at,
            attempt=self.attempt,
            actor=self.actor,
            message=self.message,
            data=self.data,
        )


class Wait(models.Model):
    """What a wait step's run waits for: a signal, a task token or a person (bpm/waits.py).

    One row per run of a wait step, made when the run is claimed. It is open while its run is
    WAITING (or, for a token, RUNNING its action); the run's status is the truth, so a token
    or a task expires with its step without a write of its own.
    """

    run = models.OneToOneField(StepRun, on_delete=models.CASCADE, related_name="wait_row")
    # wait_saga leads with the saga: the FK's own index would be a second copy.
    saga = models.ForeignKey(
        SagaInstance, on_delete=models.CASCADE, related_name="waits", db_index=False
    )
    kind = models.CharField(max_length=8, choices=WaitKind.choices)
    signal = models.CharField(max_length=100, blank=True)
    # SHA-256 of the task token, hex; the token itself is never stored.
    token_hash = models.CharField(max_length=64, blank=True)
    group = models.CharField(max_length=150, blank=True)
    title = models.CharField(max_length=200, blank=True)
    form = models.JSONField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    # A token's answer that arrived while its action still ran: applied when the action returns.
    early_answer = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [
            models.Index(fields=("saga", "created_at"), name="wait_saga"),
            models.Index(fields=("token_hash",), name="wait_token", condition=~Q(token_hash="")),
            # The task inbox: open human tasks by group.
            models.Index(
                fields=("group", "created_at"),
                name="wait_open_task",
                condition=Q(kind="TASK"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.run_id}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class Signal(models.Model):
    """A signal sent to a saga: kept until a step waiting for it consumes it.

    A saga keeps one signal per name (the unique constraint): a second one with the same name is
    a duplicate, whoever sent it and however many at once.
    """

    saga = models.ForeignKey(
        SagaInstance, on_delete=models.CASCADE, related_name="signals", db_index=False
    )
    name = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=200)
    received_at = models.DateTimeField(default=clock.now)
    consumed_by = models.ForeignKey(
        StepRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("received_at", "id")
        constraints = [
            models.UniqueConstraint(fields=("saga", "name"), name="signal_saga_name"),
        ]

    def __str__(self) -> str:
        return f"signal {self.name}"


class Barrier(models.Model):
    """One row per (saga, step, operation) a transactional handler committed (DTM's barrier)."""

    class Operation(models.TextChoices):
        ACTION = "ACTION", "action"
        COMPENSATION = "COMPENSATION", "compensation"

    # barrier_unique leads with the saga: the FK's own index would be a second copy.
    saga = models.ForeignKey(
        SagaInstance, on_delete=models.CASCADE, related_name="barriers", db_index=False
    )
    # The step's name, with "#rerun-<n>" for an operator's rerun (StepRun.barrier_step).
    step = models.CharField(max_length=120)
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


def error_code_of(error: dict[str, Any]) -> str:
    """Return an error's code, or the exception type for a fault (which has no code)."""
    return str(error.get("code") or error.get("type") or "")[:100]


def actor_for_user(user: Any) -> str:
    """Return the actor string recorded for an operator."""
    return f"user:{user.get_username()}"


class AlertRule(models.Model):
    """A condition on stuck sagas that operators want to hear about, and where to say it.

    It holds while at least `threshold` sagas of the definition (any, when blank) are STUCK for
    the reason (any, when blank), counting only those stuck within the last `window_minutes`
    when that is set. `firing_since` is when the current episode began (NULL: not firing); the
    sweeper (bpm/alerting.py) starts and ends episodes, each with one notice.
    """

    class Channel(models.TextChoices):
        EMAIL = "EMAIL", "email"
        WEBHOOK = "WEBHOOK", "webhook"

    name = models.CharField(max_length=100, unique=True)
    definition_name = models.SlugField(
        "definition", max_length=100, blank=True, help_text="blank: sagas of every definition"
    )
    stuck_reason = models.CharField(
        max_length=32, choices=StuckReason.choices, blank=True, help_text="blank: any reason"
    )
    threshold = models.PositiveIntegerField(
        default=1, help_text="fire when at least this many matching sagas are stuck"
    )
    window_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="count only sagas that got stuck within this many minutes; blank: all stuck",
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    email_to = models.TextField(blank=True, help_text="addresses, separated by commas")
    webhook_url = models.CharField(max_length=500, blank=True)
    # Signs every webhook call (HMAC-SHA256); shown to the operator once, when made or rotated.
    secret = models.CharField(max_length=64, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    firing_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class AlertNotice(models.Model):
    """One message about an episode of a rule (it fired, or it resolved), and its delivery.

    The row is the truth, an RQ job only its doorbell (bpm/alerting.py): PENDING until due, then
    SENDING under a lease while a worker calls out, then SENT, or PENDING again with a later due
    time after a failed attempt, or FAILED when the attempts ran out.
    """

    class Kind(models.TextChoices):
        FIRED = "FIRED", "fired"
        RESOLVED = "RESOLVED", "resolved"

    class Status(models.TextChoices):
        PENDING = "PENDING", "PENDING"
        SENDING = "SENDING", "SENDING"
        SENT = "SENT", "SENT"
        FAILED = "FAILED", "FAILED"

    # Kept (with the rule's name) when the rule is deleted: the log outlives it.
    rule = models.ForeignKey(
        AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="notices"
    )
    rule_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    episode_started_at = models.DateTimeField()
    channel = models.CharField(max_length=16, choices=AlertRule.Channel.choices)
    # What is sent: the JSON body of a webhook, the facts of an email.
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(default=clock.now)
    token = models.UUIDField(default=uuid.uuid4)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            # The sweeper's look for lost doorbells: only notices still on their way.
            models.Index(
                fields=("due_at",),
                name="alertnotice_unsent_due",
                condition=Q(status__in=["PENDING", "SENDING"]),
            ),
            models.Index(fields=("rule", "created_at"), name="alertnotice_rule_created"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_name} {self.kind.lower()}"


class AlertDelivery(models.Model):
    """One attempt to deliver a notice: when, the HTTP status or the error."""

    notice = models.ForeignKey(AlertNotice, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=clock.now)
    ok = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("notice", "attempt", "id")

    def __str__(self) -> str:
        return f"attempt {self.attempt}: {'ok' if self.ok else 'failed'}"


class SavedView(models.Model):
    """A named filter of the saga list (its query string), a user's own or shared with all."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000, blank=True)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ("name", "id")
        permissions = [("share_savedview", "Can save views of the saga list shared with everyone")]
        constraints = [
            models.UniqueConstraint(fields=("owner", "name"), name="savedview_owner_name")
        ]

    def __str__(self) -> str:
        return self.name


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
