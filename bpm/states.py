"""The statuses, kinds, directions and event types of sagas and their runs: enums, no models.

The planner decides from these alone, so it imports no model; the models and everything else
import them from here (bpm.models re-exports them for the code that reads them from there).
"""

from __future__ import annotations

from django.db import models


class StepKind(models.TextChoices):
    COMPENSATABLE = "COMPENSATABLE", "compensatable"
    PIVOT = "PIVOT", "pivot"
    RETRIABLE = "RETRIABLE", "retriable"


class SagaStatus(models.TextChoices):
    # Labels are the values: a status reads the same in code, API, admin and templates.
    RUNNING = "RUNNING", "RUNNING"
    COMPENSATING = "COMPENSATING", "COMPENSATING"
    COMPLETED = "COMPLETED", "COMPLETED"
    COMPENSATED = "COMPENSATED", "COMPENSATED"
    STUCK = "STUCK", "STUCK"
    ABORTED = "ABORTED", "ABORTED"


ACTIVE_STATUSES = (SagaStatus.RUNNING, SagaStatus.COMPENSATING)
# Nothing moves a saga out of these: retention archives and deletes them (bpm/retention.py).
FINISHED_STATUSES = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.ABORTED)


class StuckReason(models.TextChoices):
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED", "retries exhausted"
    REFUSED_AFTER_PIVOT = "REFUSED_AFTER_PIVOT", "refused after the pivot"
    COMPENSATION_FAILED = "COMPENSATION_FAILED", "compensation failed"
    TIMED_OUT = "TIMED_OUT", "timed out"
    NO_PROGRESS = "NO_PROGRESS", "no progress"
    HANDLER_MISSING = "HANDLER_MISSING", "handler missing"


class Direction(models.TextChoices):
    FORWARD = "FORWARD", "forward"
    COMPENSATION = "COMPENSATION", "compensation"


class StepStatus(models.TextChoices):
    PENDING = "PENDING", "PENDING"
    RUNNING = "RUNNING", "RUNNING"
    # A wait step waiting for its signal, task token or person: no lease, no doorbell.
    WAITING = "WAITING", "WAITING"
    SUCCEEDED = "SUCCEEDED", "SUCCEEDED"
    FAILED = "FAILED", "FAILED"
    SKIPPED = "SKIPPED", "SKIPPED"
    CANCELLED = "CANCELLED", "CANCELLED"


class FailureKind(models.TextChoices):
    REFUSED = "REFUSED", "refused"
    EXHAUSTED = "EXHAUSTED", "retries exhausted"


class EventType(models.TextChoices):
    SAGA_STARTED = "SAGA_STARTED", "saga started"
    SAGA_COMPLETED = "SAGA_COMPLETED", "saga completed"
    SAGA_COMPENSATING = "SAGA_COMPENSATING", "compensation started"
    SAGA_COMPENSATED = "SAGA_COMPENSATED", "saga compensated"
    SAGA_STUCK = "SAGA_STUCK", "saga stuck"
    SAGA_RESUMED = "SAGA_RESUMED", "saga resumed"
    SAGA_ABORTED = "SAGA_ABORTED", "saga aborted"
    STEP_SCHEDULED = "STEP_SCHEDULED", "step scheduled"
    STEP_STARTED = "STEP_STARTED", "attempt started"
    STEP_SUCCEEDED = "STEP_SUCCEEDED", "step succeeded"
    ATTEMPT_FAILED = "ATTEMPT_FAILED", "attempt failed, will retry"
    STEP_REFUSED = "STEP_REFUSED", "step refused"
    STEP_EXHAUSTED = "STEP_EXHAUSTED", "retries exhausted"
    STEP_SKIPPED = "STEP_SKIPPED", "step skipped"
    STEP_CANCELLED = "STEP_CANCELLED", "step cancelled"
    LEASE_EXPIRED = "LEASE_EXPIRED", "lease expired"
    STALE_RESULT = "STALE_RESULT", "stale result dropped"
    NULL_COMPENSATION = "NULL_COMPENSATION", "null compensation"
    HANGING_REFUSED = "HANGING_REFUSED", "hanging action refused"
    DUPLICATE_SKIPPED = "DUPLICATE_SKIPPED", "duplicate skipped"
    REDRIVEN = "REDRIVEN", "doorbell rung again"
    INPUT_EDITED = "INPUT_EDITED", "input edited"
    CONTEXT_EDITED = "CONTEXT_EDITED", "context edited"
    OPERATOR_RETRY = "OPERATOR_RETRY", "operator retry"
    OPERATOR_SKIP = "OPERATOR_SKIP", "operator skip"
    OPERATOR_COMPENSATE = "OPERATOR_COMPENSATE", "operator compensate"
    OPERATOR_ABORT = "OPERATOR_ABORT", "operator abort"
    STEP_WAITING = "STEP_WAITING", "step waiting"
    SIGNAL_RECEIVED = "SIGNAL_RECEIVED", "signal received"
    WAIT_TIMED_OUT = "WAIT_TIMED_OUT", "wait timed out"
    TASK_CLAIMED = "TASK_CLAIMED", "task claimed"
    TASK_UNCLAIMED = "TASK_UNCLAIMED", "task unclaimed"
    TASK_COMPLETED = "TASK_COMPLETED", "task completed"
    TASK_REJECTED = "TASK_REJECTED", "task rejected"
    TOKEN_SUCCEEDED = "TOKEN_SUCCEEDED", "task token succeeded"
    TOKEN_FAILED = "TOKEN_FAILED", "task token failed"
    OPERATOR_RERUN = "OPERATOR_RERUN", "operator rerun from a step"
    SAGA_REOPENED = "SAGA_REOPENED", "saga reopened"
    STEP_SUPERSEDED = "STEP_SUPERSEDED", "step superseded by a rerun"
    SAGA_PAUSED = "SAGA_PAUSED", "saga paused"
    SAGA_UNPAUSED = "SAGA_UNPAUSED", "saga unpaused"
    SAGA_ASSIGNED = "SAGA_ASSIGNED", "assigned"
    SAGA_ACKNOWLEDGED = "SAGA_ACKNOWLEDGED", "acknowledged"
    COMMENTED = "COMMENTED", "comment"
    SAGA_MOVED = "SAGA_MOVED", "moved to another version"


class PauseScope(models.TextChoices):
    """Why a saga starts no new step: paused by itself, or with its whole definition."""

    NONE = "", "not paused"
    SAGA = "SAGA", "paused"
    DEFINITION = "DEFINITION", "paused with its definition"


class DefinitionStatus(models.TextChoices):
    # A composed version waits as a DRAFT until a second designer approves (PUBLISHED) or
    # rejects it (REJECTED); only PUBLISHED versions start sagas.
    DRAFT = "DRAFT", "DRAFT"
    PUBLISHED = "PUBLISHED", "PUBLISHED"
    REJECTED = "REJECTED", "REJECTED"


class DefinitionEventType(models.TextChoices):
    COMPOSED = "COMPOSED", "composed as a draft"
    APPROVED = "APPROVED", "approved and published"
    REJECTED = "REJECTED", "rejected"
    DEPLOYED = "DEPLOYED", "published from a code declaration"
    PAUSED = "PAUSED", "paused: its sagas start no new step"
    RESUMED = "RESUMED", "resumed"


class WaitKind(models.TextChoices):
    SIGNAL = "SIGNAL", "signal"
    TOKEN = "TOKEN", "task token"
    TASK = "TASK", "human task"


class BatchStatus(models.TextChoices):
    # A batch repair (bpm/batches.py): queued, working through its sagas, then one of the ends.
    PENDING = "PENDING", "PENDING"
    RUNNING = "RUNNING", "RUNNING"
    FINISHED = "FINISHED", "FINISHED"
    CANCELLED = "CANCELLED", "CANCELLED"


class BatchAction(models.TextChoices):
    RETRY = "retry", "retry"
    SKIP = "skip", "skip"
    COMPENSATE = "compensate", "compensate"
    ABORT = "abort", "abort"
    MIGRATE = "migrate", "move to another version"


class BatchItemStatus(models.TextChoices):
    PENDING = "PENDING", "PENDING"
    DONE = "DONE", "DONE"
    REFUSED = "REFUSED", "REFUSED"
    FAILED = "FAILED", "FAILED"
