"""Coordinates the rows of a saga inside transactions: start, claim, run, record, advance.

The claim and fence protocol
----------------------------
Every write to a saga's rows happens with the SagaInstance row locked (`select_for_update`), so
the saga row is the single point of serialisation between workers, the sweeper and operators.

A doorbell (RQ job) carries a StepRun id and its fence token. Claiming checks, under the lock,
that the run is PENDING, due, and still has that token; a duplicated or stale doorbell is refused
there. The claim marks the run RUNNING with a lease (a fresh owner id and an expiry derived from
the step's timeout). The outcome is recorded only if the run is still RUNNING under that owner:
otherwise the sweeper has meanwhile expired the lease and the result is dropped with an event.

Transactional handlers (this database only) are claimed, run and recorded in one transaction,
behind the barrier, so their effect happens exactly once and each step costs one commit.
Other handlers run between two transactions and get at-least-once delivery: they must pass
`ctx.idempotency_key` to whatever they call.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from bpm import barrier, clock, definitions, dispatch, log_context, planner, registry, timeout
from bpm.context import StepContext
from bpm.declarations import RetryPolicy
from bpm.errors import Conflict, StepFailed
from bpm.models import (
    Direction,
    EventType,
    SagaDefinition,
    SagaInstance,
    SagaStatus,
    StepDefinition,
    StepRun,
    StepStatus,
    StuckReason,
)

log = logging.getLogger(__name__)

ENGINE = "engine"
# How early a doorbell may ring before the run's due time (clock skew between machines).
DUE_TOLERANCE = timedelta(seconds=1)
# The lease outlives the step's timeout a little, so the worker can record its own timeout.
LEASE_GRACE = timedelta(seconds=5)


@dataclass(frozen=True)
class Outcome:
    SUCCEEDED = "succeeded"
    REFUSED = "refused"
    FAULT = "fault"

    kind: str
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class Doorbell:
    """A run the worker may continue with in the same job (inline continuation)."""

    run_id: int
    token: str


def worker_actor() -> str:
    """Return the actor string of this worker process."""
    from rq import get_current_job

    job = get_current_job()
    name = job.worker_name if job is not None and job.worker_name else None
    return f"worker:{name or f'{socket.gethostname()}:{os.getpid()}'}"


# --- starting and advancing -------------------------------------------------------------------


def start(
    *,
    definition: SagaDefinition,
    input: dict[str, Any],
    business_key: str = "",
    idempotency_key: str | None = None,
    deadline: datetime | None = None,
    actor: str,
    owner: Any = None,
) -> SagaInstance:
    """Create a saga and schedule its first step; call inside a transaction."""
    if not definition.is_published:
        # The last line of defence: whoever resolved the row, a draft never runs.
        raise Conflict(f"{definition} is {definition.status}, not published: it starts no saga")
    saga = SagaInstance.objects.create(
        definition=definition,
        definition_name=definition.name,
        input=input,
        business_key=business_key,
        idempotency_key=idempotency_key,
        deadline=deadline,
        owner=owner,
    )
    saga.log(EventType.SAGA_STARTED, actor, data={"version": definition.version})
    advance(saga, actor=actor)
    saga.save()
    return saga


def latest_runs(saga: SagaInstance) -> dict[tuple[str, str], StepRun]:
    """Return the newest run of each (step name, direction)."""
    steps = {step.id: step for step in definitions.steps_of(saga.definition_id)}
    runs: dict[tuple[str, str], StepRun] = {}
    for run in StepRun.objects.filter(saga=saga).order_by("id"):
        run.step = steps[run.step_id]
        run.saga = saga
        runs[(run.step.name, run.direction)] = run
    return runs


def plan_inputs(
    saga: SagaInstance, runs: dict[tuple[str, str], StepRun]
) -> tuple[list[planner.StepSpec], dict[tuple[str, str], planner.RunState]]:
    """Return the planner's view of a saga."""
    specs = [
        planner.StepSpec(step.name, step.kind, bool(step.compensation))
        for step in definitions.steps_of(saga.definition_id)
    ]
    states = {key: planner.RunState(run.status, run.failure_kind) for key, run in runs.items()}
    return specs, states


def advance(saga: SagaInstance, *, actor: str, inline_queue: str | None = None) -> Doorbell | None:
    """Apply the planner's decisions until the saga waits or ends; the caller saves the saga.

    Returns the next run when it may be continued inline on `inline_queue` instead of rung.
    """
    while True:
        runs = latest_runs(saga)
        specs, states = plan_inputs(saga, runs)
        decision = planner.decide(specs, saga.status, states)
        if decision.move == planner.Decision.RUN:
            return _schedule(saga, decision, actor=actor, inline_queue=inline_queue)
        if decision.move == planner.Decision.COMPLETE:
            saga.complete(actor=actor)
        elif decision.move == planner.Decision.COMPENSATE:
            saga.start_compensating(actor=actor, failure=_failure_of(runs, decision.step))
            continue
        elif decision.move == planner.Decision.COMPENSATED:
            saga.finish_compensating(actor=actor)
        elif decision.move == planner.Decision.STUCK:
            run = runs[(decision.step, decision.direction)]
            saga.get_stuck(actor=actor, reason=decision.reason, message=f"{run}: {run.last_error}")
        return None


def _failure_of(runs: dict[tuple[str, str], StepRun], step: str) -> dict[str, Any]:
    run = runs[(step, Direction.FORWARD)]
    refusal = run.output or {}
    return {
        "step": step,
        "kind": run.failure_kind,
        "code": refusal.get("code", "RETRIES_EXHAUSTED"),
        "message": run.last_error,
    }


def _schedule(
    saga: SagaInstance, decision: planner.Decision, *, actor: str, inline_queue: str | None
) -> Doorbell | None:
    step = next(s for s in definitions.steps_of(saga.definition_id) if s.name == decision.step)
    run = StepRun.objects.create(saga=saga, step=step, direction=decision.direction)
    run.schedule(actor=actor)
    if inline_queue is not None and step.queue == inline_queue:
        return Doorbell(run.id, str(run.token))
    dispatch.ring(run, timeout=step.timeout, queue=step.queue)
    return None


# --- running a step ---------------------------------------------------------------------------


def execute(run_id: int, token: str, *, inline: bool = False) -> Doorbell | None:
    """Claim, run and record one step; return the next run if it may continue inline."""
    actor = worker_actor()
    try:
        run = StepRun.objects.select_related("step").get(pk=run_id)
    except StepRun.DoesNotExist:
        log.warning("doorbell for unknown step run %s ignored", run_id)
        return None
    # log_context (logs): every line logged for this step, the handler's too, names its saga,
    # step, attempt and worker; `_lock` adds the request id stored on the saga row.
    with log_context.bound(
        saga_id=str(run.saga_id),
        step=run.step.name,
        attempt=run.attempts + 1,
        worker=actor.removeprefix("worker:"),
    ):
        handler_name = run.step.handler_name(run.direction)
        try:
            handler = registry.get_handler(handler_name)
        except KeyError:
            _stop_for_missing_handler(run_id, token, handler_name, actor=actor)
            return None
        if handler.transactional:
            return _execute_in_one_transaction(run_id, token, handler, actor=actor, inline=inline)
        return _execute_at_least_once(run_id, token, handler, actor=actor, inline=inline)


def _lock(run_id: int) -> tuple[SagaInstance, StepRun]:
    saga_id = StepRun.objects.values_list("saga_id", flat=True).get(pk=run_id)
    saga = SagaInstance.objects.select_for_update().get(pk=saga_id)
    run = StepRun.objects.get(pk=run_id)
    # log_context (logs): inside `execute`'s block, the lines name the request that started the
    # saga and the attempt this lock is for; outside one (the sweeper) this does nothing.
    log_context.add(
        request_id=saga.request_id,
        attempt=run.attempts + (1 if run.status == StepStatus.PENDING else 0),
    )
    run.saga = saga
    run.step = next(s for s in definitions.steps_of(saga.definition_id) if s.id == run.step_id)
    return saga, run


def _doorbell_problem(saga: SagaInstance, run: StepRun, token: str) -> str:
    """Return why this doorbell may not claim the run, or "" when it may."""
    problem = ""
    if str(run.token) != token:
        problem = "stale token"
    elif run.status != StepStatus.PENDING:
        problem = f"run is {run.status}"
    elif run.due_at > clock.now() + DUE_TOLERANCE:
        problem = "not due yet"
    elif not saga.is_active:
        problem = f"saga is {saga.status}"
    if problem:
        log.info("doorbell for run %s refused: %s", run.id, problem)
    return problem


def _claim(saga: SagaInstance, run: StepRun, token: str, *, actor: str) -> uuid.UUID | None:
    """Mark the run RUNNING under a new lease, or return None when the doorbell is not valid."""
    if _doorbell_problem(saga, run, token):
        return None
    now = clock.now()
    owner = uuid.uuid4()
    lease_until = now + timedelta(seconds=run.step.timeout) + LEASE_GRACE
    run.claim(actor=actor, owner=owner, lease_until=lease_until)
    return owner


def _stop_for_missing_handler(run_id: int, token: str, handler_name: str, *, actor: str) -> None:
    """Stop the saga at once when this worker has no handler for the run (renamed or removed).

    Retrying cannot help and nothing ran, so the run is cancelled (an operator retry after the
    handler is back runs it afresh, and a compensation has nothing of it to undo).
    """
    with transaction.atomic():
        saga, run = _lock(run_id)
        if _doorbell_problem(saga, run, token):
            return
        message = (
            f"{run}: the handler {handler_name!r} is not registered in {actor}"
            " (renamed or removed while this version still runs)"
        )
        run.cancel(actor=actor, reason=message)
        run.save()
        saga.get_stuck(actor=actor, reason=StuckReason.HANDLER_MISSING, message=message)
        saga.save()


def _execute_in_one_transaction(
    run_id: int, token: str, handler: registry.Handler, *, actor: str, inline: bool
) -> Doorbell | None:
    with transaction.atomic():
        saga, run = _lock(run_id)
        if _claim(saga, run, token, actor=actor) is None:
            return None
        try:
            with transaction.atomic():
                outcome = _run_behind_barrier(saga, run, handler, actor=actor)
        except Exception as exc:
            outcome = _outcome_of(exc)
        return record(saga, run, outcome, actor=actor, inline=inline)


def _run_behind_barrier(
    saga: SagaInstance, run: StepRun, handler: registry.Handler, *, actor: str
) -> Outcome:
    verdict = barrier.enter(saga, run.step.name, run.direction)
    if verdict is barrier.Verdict.RUN:
        return _call(handler, run)
    if verdict is barrier.Verdict.NULL_COMPENSATION:
        run.log(EventType.NULL_COMPENSATION, actor, "the action never ran: nothing to undo")
        return Outcome(Outcome.SUCCEEDED, output={})
    if verdict is barrier.Verdict.HANGING:
        message = "the action arrived after its compensation"
        run.log(EventType.HANGING_REFUSED, actor, message)
        return Outcome(Outcome.REFUSED, error={"code": "HANGING", "message": message, "data": {}})
    run.log(EventType.DUPLICATE_SKIPPED, actor, "this operation already committed")
    previous = (
        StepRun.objects.filter(
            saga=saga, step=run.step, direction=run.direction, status=StepStatus.SUCCEEDED
        )
        .order_by("-id")
        .first()
    )
    return Outcome(Outcome.SUCCEEDED, output=previous.output if previous else {})


def _execute_at_least_once(
    run_id: int, token: str, handler: registry.Handler, *, actor: str, inline: bool
) -> Doorbell | None:
    with transaction.atomic():
        saga, run = _lock(run_id)
        owner = _claim(saga, run, token, actor=actor)
        if owner is None:
            return None
        run.save()
        saga.save(update_fields=["updated_at"])
    try:
        outcome = _call(handler, run)
    except Exception as exc:
        outcome = _outcome_of(exc)
    with transaction.atomic():
        saga, run = _lock(run_id)
        if run.status != StepStatus.RUNNING or run.lease_owner != owner:
            run.log(
                EventType.STALE_RESULT,
                actor,
                f"result of attempt {run.attempts} arrived after its lease was taken back",
                data={"outcome": outcome.kind, "output": outcome.output, "error": outcome.error},
            )
            saga.save(update_fields=["updated_at"])
            return None
        return record(saga, run, outcome, actor=actor, inline=inline)


def _call(handler: registry.Handler, run: StepRun) -> Outcome:
    """Run the handler under the step's timeout; raise what it raises."""
    with timeout.limit(run.step.timeout):
        output = handler.func(context_for(run))
    if output is None:
        output = {}
    if not isinstance(output, dict):
        raise TypeError(f"handler {handler.name} returned {type(output).__name__}, not a dict")
    return Outcome(Outcome.SUCCEEDED, output=output)


def _outcome_of(exc: Exception) -> Outcome:
    if isinstance(exc, StepFailed):
        error = {"code": exc.code, "message": exc.message, "data": exc.data}
        return Outcome(Outcome.REFUSED, error=error)
    error = {
        "type": type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc)),
    }
    return Outcome(Outcome.FAULT, error=error)


def context_for(run: StepRun) -> StepContext:
    """Return what the handler of this run receives."""
    saga = run.saga
    return StepContext(
        saga_id=saga.id,
        step=run.step.name,
        direction=run.direction,
        attempt=run.attempts,
        input=saga.input,
        outputs=dict(saga.context),
        idempotency_key=run.idempotency_key,
        business_key=saga.business_key,
        failure=saga.failure if run.direction == Direction.COMPENSATION else None,
        owner_id=saga.owner_id,
    )


# --- recording an outcome ---------------------------------------------------------------------


def record(
    saga: SagaInstance, run: StepRun, outcome: Outcome, *, actor: str, inline: bool = False
) -> Doorbell | None:
    """Store the outcome of a RUNNING run, decide the next move and save; caller holds the lock."""
    if outcome.kind == Outcome.SUCCEEDED:
        output = outcome.output or {}
        run.succeed(actor=actor, output=output)
        if run.direction == Direction.FORWARD:
            saga.context = {**saga.context, run.step.name: output}
    elif outcome.kind == Outcome.REFUSED:
        assert outcome.error is not None
        run.refuse(actor=actor, error=outcome.error)
        run.output = {"code": outcome.error["code"], "message": outcome.error["message"]}
    else:
        assert outcome.error is not None
        _record_fault(saga, run, outcome.error, actor=actor)
    run.save()
    if saga.is_active:
        doorbell = advance(saga, actor=actor, inline_queue=run.step.queue if inline else None)
    else:
        doorbell = None
        settle_flagged(saga, actor=actor)
    saga.save()
    return doorbell


def settle_flagged(saga: SagaInstance, *, actor: str) -> bool:
    """Finish a STUCK saga whose runs say it is done; return whether it was finished.

    The sweeper may flag a saga (past its deadline, no progress) while its last step is still
    committing. The runs are the truth: when every step (or every compensation) is done, the
    saga ends as the planner says instead of staying STUCK with nothing left to do.
    """
    if saga.status != SagaStatus.STUCK:
        return False
    heading = (
        SagaStatus.COMPENSATING
        if saga.stuck_direction == Direction.COMPENSATION
        else SagaStatus.RUNNING
    )
    specs, states = plan_inputs(saga, latest_runs(saga))
    decision = planner.decide(specs, heading, states)
    if decision.move == planner.Decision.COMPLETE:
        saga.complete_after_flag(actor=actor)
    elif decision.move == planner.Decision.COMPENSATED:
        saga.compensate_after_flag(actor=actor)
    else:
        return False
    return True


def _record_fault(saga: SagaInstance, run: StepRun, error: dict[str, Any], *, actor: str) -> None:
    step: StepDefinition = run.step
    if run.attempts >= step.max_attempts:
        run.exhaust(actor=actor, error=error)
        return
    due_at = clock.now() + timedelta(seconds=backoff(step.retry_policy, run.attempts))
    run.retry_later(actor=actor, error=error, due_at=due_at)
    if saga.is_active:
        dispatch.ring(run, timeout=step.timeout, queue=step.queue)
    else:
        run.cancel(actor=actor, reason=f"the saga is {saga.status}")


def backoff(policy: RetryPolicy, attempts: int, rng: random.Random | None = None) -> float:
    """Return the delay in seconds before the attempt after `attempts` failed ones."""
    delay = min(policy.initial_backoff * policy.multiplier ** (attempts - 1), policy.max_backoff)
    spread = delay * policy.jitter
    return max(0.0, delay - spread + (rng or random).random() * 2 * spread)


def expire_lease(run_id: int, *, actor: str) -> bool:
    """Turn an expired lease into a failed attempt; return whether it was still expired."""
    with transaction.atomic():
        saga, run = _lock(run_id)
        if run.status != StepStatus.RUNNING or run.lease_expires_at is None:
            return False
        if run.lease_expires_at > clock.now():
            return False
        message = (
            f"attempt {run.attempts} lost its lease: the worker died or the step ran past its"
            f" timeout of {run.step.timeout:g}s"
        )
        run.log(EventType.LEASE_EXPIRED, actor, message)
        error = {"type": "LeaseExpired", "message": message, "traceback": ""}
        record(saga, run, Outcome(Outcome.FAULT, error=error), actor=actor)
        return True
