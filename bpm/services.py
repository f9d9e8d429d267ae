"""Saga operations: the only entry points the API, admin, dashboard and commands call.

Each operator action requires a reason, runs under the saga's row lock so two operators cannot
both win, is checked against the state machine (a conflict is an error, never a silent no-op),
writes an audit event with the actor, and can be previewed without changing anything.

A person's request passes `user`: their permission for the action is checked (bpm.permissions) and
their name becomes the actor. Trusted callers on the server (commands, tests) pass `actor` instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from bpm import clock, definitions, engine, merge_patch, permissions, planner, schemas, versions
from bpm.errors import Conflict, InvalidInput, NotFound
from bpm.models import (
    Direction,
    EventType,
    PauseScope,
    SagaDefinition,
    SagaEvent,
    SagaInstance,
    SagaStatus,
    StepKind,
    StepStatus,
)

RETRY = permissions.RETRY
SKIP = permissions.SKIP
COMPENSATE = permissions.COMPENSATE
ABORT = permissions.ABORT
# Rerunning from a step redrives the saga, and pausing holds it: both need the retry permission.
RERUN = "rerun"
PAUSE = "pause"
RESUME = "resume"
MIGRATE = permissions.MIGRATE


@dataclass
class ActionResult:
    action: str
    saga: SagaInstance
    # (step, direction) pairs the action will run, in order, if each of them succeeds.
    will_run: list[tuple[str, str]] = field(default_factory=list)
    applied: bool = False
    # The status the action sets: RUNNING, COMPENSATING or ABORTED ("" when not simulated, or
    # when the action leaves the status as it is: pause).
    status_after: str = ""

    def outcome(self) -> str:
        """Return the status the saga ends in if every step of the plan succeeds."""
        settles: dict[str, str] = {
            SagaStatus.RUNNING: SagaStatus.COMPLETED,
            SagaStatus.COMPENSATING: SagaStatus.COMPENSATED,
        }
        return settles.get(self.status_after, self.status_after)

    def describe(self) -> list[str]:
        """Return the plan as lines such as 'run take_payment' or 'compensate create_order'."""
        verbs: dict[str, str] = {Direction.FORWARD: "run", Direction.COMPENSATION: "compensate"}
        return [f"{verbs[direction]} {step}" for step, direction in self.will_run]


# --- starting ---------------------------------------------------------------------------------


def saga_start(
    *,
    definition: str,
    input: Any,
    actor: str = "",
    user: Any = None,
    business_key: str = "",
    idempotency_key: str | None = None,
    version: int | None = None,
    deadline: datetime | None = None,
    owner: Any = None,
) -> SagaInstance:
    """Start a saga of the named definition; a repeated idempotency key returns the first one.

    A person's request passes `user`, whose start permission is checked; trusted callers on the
    server pass `actor` instead. `owner` is the user the saga belongs to (bpm.ownership): a
    client's request passes its user, so that it reads the saga back and nobody else's.
    """
    actor = permissions.authorize(user=user, actor=actor, action=permissions.START)
    definition_row = definitions.resolve(definition, version)
    validate_input(definition_row, input)
    if len(business_key) > 200:
        raise InvalidInput("must be at most 200 characters", path="business_key")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        raise InvalidInput("must be 1 to 200 characters", path="idempotency_key")
    if idempotency_key:
        existing = _existing(definition_row.name, idempotency_key, input)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            return engine.start(
                definition=definition_row,
                input=input,
                business_key=business_key,
                idempotency_key=idempotency_key,
                deadline=deadline,
                actor=actor,
                owner=owner,
            )
    except IntegrityError:
        # Another request with the same idempotency key committed first.
        existing = _existing(definition_row.name, idempotency_key or "", input)
        if existing is None:
            raise
        return existing


def _existing(name: str, idempotency_key: str, input: Any) -> SagaInstance | None:
    saga = SagaInstance.objects.filter(
        definition_name=name, idempotency_key=idempotency_key
    ).first()
    if saga is not None and saga.input != input:
        raise Conflict(
            f"idempotency key {idempotency_key!r} was already used for saga {saga.id}"
            " with a different input"
        )
    return saga


def validate_input(definition: SagaDefinition, value: Any) -> None:
    """Raise InvalidInput unless `value` is a JSON object that the definition's schema accepts."""
    if not isinstance(value, dict):
        raise InvalidInput(f"must be a JSON object, not {type(value).__name__}", path="input")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"is not JSON: {exc}", path="input") from None
    schemas.validate(definition.input_schema, value)


# --- operator actions -------------------------------------------------------------------------


def saga_retry(
    *,
    saga_id: uuid.UUID | str,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    input: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    input_patch: dict[str, Any] | None = None,
    preview: bool = False,
    batch: int | None = None,
) -> ActionResult:
    """Redrive a stuck saga from its failed step, optionally with edited input or context.

    `input_patch` is a JSON merge patch (RFC 7386) applied to the saga's input under its lock, so
    one patch serves many sagas; `batch` names the batch repair (bpm/batches.py) acting.
    """
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)
    if input is not None and input_patch is not None:
        raise InvalidInput("give the new input or a patch to it, not both", path="input_patch")
    edited = {"input": input}

    def check(saga: SagaInstance, runs: Runs) -> None:
        _forbid_retry(saga, runs)
        if input_patch is not None:
            if not isinstance(input_patch, dict):
                raise InvalidInput("must be a JSON object (a merge patch)", path="input_patch")
            edited["input"] = merge_patch.apply(saga.input, input_patch)
        if edited["input"] is not None:
            validate_input(saga.definition, edited["input"])
        if context is not None and not isinstance(context, dict):
            raise InvalidInput("must be a JSON object of step outputs", path="context")

    def simulate(saga: SagaInstance, states: States) -> str:
        for blocking in _every_blocking(saga, states):
            states[blocking] = planner.RunState(StepStatus.PENDING)
        return _resume_status(saga)

    def apply(saga: SagaInstance, runs: Runs, result: ActionResult) -> None:
        blocking = _every_blocking(saga, runs)
        engine.edit(saga, input=edited["input"], context=context, actor=actor)
        data = _audit({"plan": result.describe()}, batch)
        saga.log(EventType.OPERATOR_RETRY, actor, reason, data=data)
        engine.resume(saga, actor=actor, reason=reason)
        for key in blocking:
            engine.rerun(saga, runs, key, actor=actor)

    return _operate(saga_id, RETRY, reason, actor, preview, check, simulate, apply)


def saga_skip(
    *,
    saga_id: uuid.UUID | str,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    output: dict[str, Any] | None = None,
    preview: bool = False,
    batch: int | None = None,
) -> ActionResult:
    """Mark a stuck saga's failed step as done by hand, recording `output` as its result."""
    actor = permissions.authorize(user=user, actor=actor, action=SKIP)
    output = {} if output is None else output

    def check(saga: SagaInstance, runs: Runs) -> None:
        _forbid_skip(saga, runs)
        if not isinstance(output, dict):
            raise InvalidInput("must be a JSON object", path="output")

    def simulate(saga: SagaInstance, states: States) -> str:
        blocking = _blocking(saga, states)
        assert blocking is not None
        states[blocking] = planner.RunState(StepStatus.SKIPPED)
        return _resume_status(saga)

    def apply(saga: SagaInstance, runs: Runs, result: ActionResult) -> None:
        key = _blocking(saga, runs)
        assert key is not None
        run = runs[key]
        saga.log(
            EventType.OPERATOR_SKIP,
            actor,
            reason,
            step_run=run,
            data=_audit(
                {"step": run.step.name, "output": output, "plan": result.describe()}, batch
            ),
        )
        engine.skip(saga, run, actor=actor, reason=reason, output=output)
        engine.resume(saga, actor=actor, reason=reason)

    return _operate(saga_id, SKIP, reason, actor, preview, check, simulate, apply)


def saga_compensate(
    *,
    saga_id: uuid.UUID | str,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    preview: bool = False,
    batch: int | None = None,
) -> ActionResult:
    """Stop a saga stuck going forward and undo its finished steps, newest first."""
    actor = permissions.authorize(user=user, actor=actor, action=COMPENSATE)

    check = _forbid_compensate

    def simulate(saga: SagaInstance, states: States) -> str:
        return SagaStatus.COMPENSATING

    def apply(saga: SagaInstance, runs: Runs, result: ActionResult) -> None:
        data = _audit({"plan": result.describe()}, batch)
        saga.log(EventType.OPERATOR_COMPENSATE, actor, reason, data=data)
        failure = {"step": "", "kind": "OPERATOR", "code": "OPERATOR", "message": reason}
        saga.resume_compensating(actor=actor, reason=reason, failure=failure)

    return _operate(saga_id, COMPENSATE, reason, actor, preview, check, simulate, apply)


def saga_abort(
    *,
    saga_id: uuid.UUID | str,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    preview: bool = False,
    batch: int | None = None,
) -> ActionResult:
    """Close a stuck saga as resolved by hand: nothing more runs."""
    actor = permissions.authorize(user=user, actor=actor, action=ABORT)

    check = _forbid_abort

    def simulate(saga: SagaInstance, states: States) -> str:
        return SagaStatus.ABORTED

    def apply(saga: SagaInstance, runs: Runs, result: ActionResult) -> None:
        saga.log(EventType.OPERATOR_ABORT, actor, reason, data=_audit({}, batch))
        engine.abort(saga, runs, actor=actor, reason=reason)

    return _operate(saga_id, ABORT, reason, actor, preview, check, simulate, apply)


@dataclass
class MoveResult(ActionResult):
    source: str = ""
    target: str = ""

    def describe(self) -> list[str]:
        """Return 'move from v1 to v2' and the steps the saga then runs (once retried if stuck)."""
        return [f"move from {self.source} to {self.target}", *super().describe()]


def saga_move(
    *,
    saga_id: uuid.UUID | str,
    target: SagaDefinition,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    preview: bool = False,
    batch: int | None = None,
) -> MoveResult:
    """Move a RUNNING or STUCK saga to another version of its definition (bpm/versions.py).

    Refused (Conflict, with why) unless the steps it already ran map onto `target`, and while a
    worker runs one of its steps: a saga moves only between steps. A stuck saga stays stuck on
    its new version until an operator retries it.
    """
    actor = permissions.authorize(user=user, actor=actor, action=MIGRATE)
    reason = (reason or "").strip()
    if not reason and not preview:
        raise InvalidInput("a reason is required", path="reason")
    target_steps = definitions.steps_of(target.pk)

    def act(view: engine.SagaRows) -> MoveResult:
        saga, runs = view.saga, view.latest_runs()
        source = saga.definition
        why = versions.refusal(
            _saga_shape(saga, runs),
            _version_shape(source, definitions.steps_of(source.pk)),
            _version_shape(target, target_steps),
        )
        if why:
            raise Conflict(f"cannot move to {target}: {why}")
        try:
            validate_input(target, saga.input)
        except InvalidInput as exc:
            raise Conflict(
                f"cannot move to {target}: its input does not fit that version's schema ({exc})"
            ) from None
        result = MoveResult(
            MIGRATE,
            saga,
            _plan_on(target_steps, saga, runs),
            source=f"v{source.version}",
            target=f"v{target.version}",
        )
        if preview:
            return result
        message = f"moved from version {source.version} to {target.version} by {actor}: {reason}"
        data = _audit({"from": source.version, "to": target.version, "reason": reason}, batch)
        saga.log(EventType.SAGA_MOVED, actor, message, data=data)
        engine.move(saga, runs, target, actor=actor)
        result.applied = True
        return result

    return engine.operate(_parse_id(saga_id), act, actor=actor)


def _saga_shape(saga: SagaInstance, runs: Runs) -> versions.SagaShape:
    order = {step.name: step.position for step in definitions.steps_of(saga.definition_id)}
    ran = tuple(sorted({step for step, _ in runs}, key=lambda name: order.get(name, 0)))
    specs, states = engine.plan_inputs(saga, runs)
    decision = planner.decide(specs, SagaStatus.RUNNING, states)
    in_flight = next((run for run in runs.values() if run.status == StepStatus.RUNNING), None)
    live = bool(
        in_flight is not None
        and in_flight.lease_expires_at is not None
        and in_flight.lease_expires_at > clock.now()
    )
    return versions.SagaShape(
        status=saga.status,
        ran=ran,
        next_step=decision.step if decision.direction == Direction.FORWARD else "",
        in_flight=in_flight.step.name if in_flight is not None else "",
        in_flight_lease_live=live,
    )


def _version_shape(definition: SagaDefinition, steps: Any) -> versions.VersionShape:
    return versions.VersionShape(
        definition.name,
        definition.version,
        definition.is_published,
        versions.shape_of_steps(steps),
    )


def _plan_on(steps: Any, saga: SagaInstance, runs: Runs) -> list[tuple[str, str]]:
    """Return what the saga runs on the new version: as it goes, or once retried if stuck."""
    specs = engine.step_specs(steps)
    states = {key: planner.RunState(run.status, run.failure_kind) for key, run in runs.items()}
    status = saga.status
    if status == SagaStatus.STUCK:
        for blocking in _every_blocking(saga, states):
            states[blocking] = planner.RunState(StepStatus.PENDING)
        status = _resume_status(saga)
    return planner.remaining(specs, status, states)


def _audit(data: dict[str, Any], batch: int | None) -> dict[str, Any]:
    """Return an audit event's data, naming the batch repair that acted, if one did."""
    return data if batch is None else {**data, "batch": batch}


def saga_rerun(
    *,
    saga_id: uuid.UUID | str,
    step: str,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    input: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    preview: bool = False,
) -> ActionResult:
    """Run a STUCK or COMPLETED saga forward again from `step`, optionally with edited data.

    The step and every later one that ran run again, each under a new idempotency key (the
    confirmation really goes out again); a step at or before a committed pivot cannot be rerun.
    """
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)

    def check(saga: SagaInstance, runs: Runs) -> None:
        _forbid_rerun(saga, runs, step)
        if input is not None:
            validate_input(saga.definition, input)
        if context is not None and not isinstance(context, dict):
            raise InvalidInput("must be a JSON object of step outputs", path="context")

    def simulate(saga: SagaInstance, states: States) -> str:
        for name in _from_step(saga, step):
            if (name, Direction.FORWARD) in states:
                states[(name, Direction.FORWARD)] = planner.RunState(StepStatus.CANCELLED)
        return SagaStatus.RUNNING

    def apply(saga: SagaInstance, runs: Runs, result: ActionResult) -> None:
        engine.edit(saga, input=input, context=context, actor=actor)
        data = {"step": step, "from_status": saga.status, "plan": result.describe()}
        saga.log(EventType.OPERATOR_RERUN, actor, reason, data=data)
        engine.rerun_from(saga, runs, step, actor=actor, reason=reason)

    return _operate(saga_id, RERUN, reason, actor, preview, check, simulate, apply)


def saga_pause(
    *,
    saga_id: uuid.UUID | str,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    preview: bool = False,
) -> ActionResult:
    """Hold an unfinished saga: running steps finish, no new step starts until it is resumed."""
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)

    def simulate(saga: SagaInstance, states: States) -> str:
        # Nothing runs while paused and the status stays: no plan, no outcome.
        return ""

    def apply(saga: SagaInstance, runs: Runs, result: ActionResult) -> None:
        engine.pause(saga, actor=actor, reason=reason)

    return _operate(saga_id, PAUSE, reason, actor, preview, _forbid_pause, simulate, apply)


def saga_resume(
    *,
    saga_id: uuid.UUID | str,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    preview: bool = False,
) -> ActionResult:
    """Lift a saga's own pause: its waiting steps ring again and held successors are scheduled."""
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)

    def simulate(saga: SagaInstance, states: States) -> str:
        return str(saga.status)

    def apply(saga: SagaInstance, runs: Runs, result: ActionResult) -> None:
        still = PauseScope.DEFINITION if saga.definition.paused_at else PauseScope.NONE
        engine.unpause(saga, runs, actor=actor, reason=reason, still=still)

    return _operate(saga_id, RESUME, reason, actor, preview, _forbid_resume, simulate, apply)


@dataclass
class DefinitionPauseResult:
    definition: SagaDefinition
    # The unfinished sagas the pause holds (or, resumed, lets go).
    sagas: int
    applied: bool = False


def definition_pause(
    *,
    name: str,
    version: int,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    preview: bool = False,
) -> DefinitionPauseResult:
    """Pause a definition version: its unfinished sagas and any started later start no new step."""
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)
    definition = _definition(name, version)
    held = SagaInstance.objects.filter(
        definition=definition, status__in=engine.UNFINISHED, paused=PauseScope.NONE
    )
    if preview:
        if definition.paused_at is not None:
            raise Conflict(f"{definition} is already paused")
        return DefinitionPauseResult(definition, held.count())
    reason = _required(reason)
    count = engine.pause_definition(definition.pk, actor=actor, reason=reason)
    return DefinitionPauseResult(_definition(name, version), count, applied=True)


def definition_resume(
    *,
    name: str,
    version: int,
    reason: str = "",
    actor: str = "",
    user: Any = None,
    preview: bool = False,
) -> DefinitionPauseResult:
    """Resume a paused definition version and the sagas it held (not those paused on their own)."""
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)
    definition = _definition(name, version)
    if preview:
        if definition.paused_at is None:
            raise Conflict(f"{definition} is not paused")
        held = SagaInstance.objects.filter(definition=definition, paused=PauseScope.DEFINITION)
        return DefinitionPauseResult(definition, held.count())
    reason = _required(reason)
    count = engine.resume_definition(definition.pk, actor=actor, reason=reason)
    return DefinitionPauseResult(_definition(name, version), count, applied=True)


def _definition(name: str, version: int) -> SagaDefinition:
    definition = SagaDefinition.objects.filter(name=name, version=version).first()
    if definition is None:
        raise NotFound(f"no saga definition {name!r} version {version}")
    return definition


def _required(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("a reason is required", path="reason")
    if len(reason) > 1000:
        raise InvalidInput("must be at most 1000 characters", path="reason")
    return reason


# --- who is on a saga: assignment, acknowledgement, comments ----------------------------------

COMMENT_LENGTH = 2000


def saga_assign(
    *,
    saga_id: uuid.UUID | str,
    assignee: str | None,
    reason: str = "",
    actor: str = "",
    user: Any = None,
) -> SagaInstance:
    """Give a saga to an operator (by username), or take it back from whoever has it (None)."""
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)
    person = _operator_named(assignee) if assignee else None
    reason = (reason or "").strip()[:COMMENT_LENGTH]

    def change(saga: SagaInstance) -> None:
        before = _username(saga.assignee)
        if (person is None and saga.assignee_id is None) or (
            person is not None and saga.assignee_id == person.pk
        ):
            raise Conflict(f"saga {saga.id} is already {_assigned_text(before)}")
        saga.assignee = person
        after = _username(person)
        message = reason or _assigned_text(after)
        saga.log(EventType.SAGA_ASSIGNED, actor, message, data={"before": before, "after": after})

    return _note(saga_id, change, ["assignee"])


def saga_acknowledge(
    *, saga_id: uuid.UUID | str, actor: str = "", user: Any = None
) -> SagaInstance:
    """Record that an operator has seen this stuck saga (until it is stuck again)."""
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)

    def change(saga: SagaInstance) -> None:
        _require_stuck(saga, "acknowledge")
        if saga.acknowledged_at is not None:
            raise Conflict(f"saga {saga.id} was already acknowledged at {saga.acknowledged_at}")
        saga.acknowledged_at = clock.now()
        saga.log(EventType.SAGA_ACKNOWLEDGED, actor, "acknowledged")

    return _note(saga_id, change, ["acknowledged_at"])


def saga_comment(
    *, saga_id: uuid.UUID | str, text: Any, actor: str = "", user: Any = None
) -> SagaInstance:
    """Add an operator's comment to the saga's timeline (plain text, 1 to 2000 characters)."""
    actor = permissions.authorize(user=user, actor=actor, action=RETRY)
    if not isinstance(text, str):
        raise InvalidInput(f"must be text, not {type(text).__name__}", path="text")
    text = text.strip()
    if not text:
        raise InvalidInput("a comment needs some text", path="text")
    if len(text) > COMMENT_LENGTH:
        raise InvalidInput(f"must be at most {COMMENT_LENGTH} characters", path="text")
    if any(ord(c) < 32 and c not in "\n\t\r" for c in text):
        raise InvalidInput("must not contain control characters", path="text")

    def change(saga: SagaInstance) -> None:
        saga.log(EventType.COMMENTED, actor, text)

    return _note(saga_id, change, [])


def _note(
    saga_id: uuid.UUID | str, change: Callable[[SagaInstance], None], fields: list[str]
) -> SagaInstance:
    return engine.note(_parse_id(saga_id), change, fields=fields)


def _operator_named(username: str) -> Any:
    person = get_user_model().objects.filter(username=username, is_active=True).first()
    if person is None or not permissions.may(person, RETRY):
        raise InvalidInput(f"{username!r} is not an operator who can take sagas", path="assignee")
    return person


def _username(person: Any) -> str | None:
    return None if person is None else str(person.get_username())


def _assigned_text(username: str | None) -> str:
    return f"assigned to {username}" if username else "unassigned"


def last_operator_act(saga: SagaInstance) -> str:
    """Return who last acted on the saga by hand and how, for a conflict's message, or ""."""
    event = (
        SagaEvent.objects.filter(saga=saga, type__in=OPERATOR_ACTS, actor__startswith="user:")
        .order_by("-at", "-id")
        .first()
    )
    if event is None:
        return ""
    who = event.actor.removeprefix("user:")
    text = f"{who} did “{event.get_type_display()}” at {event.at:%Y-%m-%d %H:%M:%S}"
    return f"{text}: {event.message}" if event.message else text


OPERATOR_ACTS = (
    EventType.OPERATOR_RETRY,
    EventType.OPERATOR_SKIP,
    EventType.OPERATOR_COMPENSATE,
    EventType.OPERATOR_ABORT,
    EventType.OPERATOR_RERUN,
    EventType.SAGA_PAUSED,
    EventType.SAGA_UNPAUSED,
)


# --- what each action's state requires -------------------------------------------------------

Runs = engine.LatestRuns
States = dict[tuple[str, str], planner.RunState]


def _forbid_retry(saga: SagaInstance, runs: Runs) -> None:
    _require_stuck(saga, RETRY)


def _forbid_skip(saga: SagaInstance, runs: Runs) -> None:
    _require_stuck(saga, SKIP)
    if _blocking(saga, runs) is None:
        raise Conflict("no step has failed, so there is nothing to skip; retry or abort")


def _forbid_compensate(saga: SagaInstance, runs: Runs) -> None:
    _require_stuck(saga, COMPENSATE)
    if saga.stuck_direction == Direction.COMPENSATION:
        raise Conflict("the saga is already compensating: retry or skip the failed compensation")
    pivot = _committed_pivot(saga, runs)
    if pivot:
        raise Conflict(
            f"the pivot step {pivot!r} has committed, so this saga can only go forward:"
            " retry, skip or abort"
        )
    if any(run.status in planner.IN_FLIGHT for run in runs.values()):
        raise Conflict("a step is still running; wait for it or abort")


def _forbid_abort(saga: SagaInstance, runs: Runs) -> None:
    _require_stuck(saga, ABORT)


def _forbid_rerun(saga: SagaInstance, runs: Runs, step: str) -> None:
    steps = [s.name for s in definitions.steps_of(saga.definition_id)]
    if step not in steps:
        raise InvalidInput(
            f"{saga.definition} has no step {step!r}; its steps are {', '.join(steps)}",
            path="step",
        )
    _forbid_rerun_any(saga, runs)
    if (step, Direction.FORWARD) not in runs:
        raise Conflict(f"step {step!r} has not run yet: there is nothing to run again")
    pivot = _committed_pivot(saga, runs)
    if pivot and steps.index(step) <= steps.index(pivot):
        raise Conflict(
            f"the pivot step {pivot!r} has committed: rerun from a step after it, not {step!r}"
        )


def _forbid_rerun_any(saga: SagaInstance, runs: Runs) -> None:
    if saga.status not in (SagaStatus.STUCK, SagaStatus.COMPLETED):
        raise Conflict(f"cannot rerun saga {saga.id}: it is {saga.status}, not STUCK or COMPLETED")
    if saga.status == SagaStatus.STUCK and saga.stuck_direction == Direction.COMPENSATION:
        raise Conflict("the saga is stuck compensating: retry or skip the failed compensation")
    if any(run.status in (StepStatus.PENDING, StepStatus.RUNNING) for run in runs.values()):
        raise Conflict("a step is still running; wait for it")


def rerun_steps(saga: SagaInstance, runs: Runs) -> list[str]:
    """Return the steps a rerun may start from now (no lock: a hint for a form)."""
    try:
        _forbid_rerun_any(saga, runs)
    except Conflict:
        return []
    allowed = []
    for step in definitions.steps_of(saga.definition_id):
        try:
            _forbid_rerun(saga, runs, step.name)
        except (Conflict, InvalidInput):
            continue
        allowed.append(step.name)
    return allowed


def _forbid_rerun_anywhere(saga: SagaInstance, runs: Runs) -> None:
    if not rerun_steps(saga, runs):
        _forbid_rerun_any(saga, runs)
        raise Conflict("no step can be run again: none has run after the committed pivot")


def _forbid_pause(saga: SagaInstance, runs: Runs) -> None:
    if saga.status not in engine.UNFINISHED:
        raise Conflict(f"cannot pause saga {saga.id}: it is {saga.status}, already finished")
    if saga.paused == PauseScope.SAGA:
        raise Conflict(f"saga {saga.id} is already paused")


def _forbid_resume(saga: SagaInstance, runs: Runs) -> None:
    if saga.paused == PauseScope.DEFINITION:
        raise Conflict(
            f"saga {saga.id} is paused with its definition {saga.definition}: resume the definition"
        )
    if saga.paused != PauseScope.SAGA:
        raise Conflict(f"saga {saga.id} is not paused")


def _from_step(saga: SagaInstance, step: str) -> list[str]:
    names = [s.name for s in definitions.steps_of(saga.definition_id)]
    return names[names.index(step) :] if step in names else []


# Raise Conflict when the saga's state forbids the action; the services check under the row lock.
STATE_RULES: dict[str, Callable[[SagaInstance, Runs], None]] = {
    RETRY: _forbid_retry,
    SKIP: _forbid_skip,
    COMPENSATE: _forbid_compensate,
    ABORT: _forbid_abort,
    RERUN: lambda saga, runs: _forbid_rerun_anywhere(saga, runs),
    PAUSE: _forbid_pause,
    RESUME: _forbid_resume,
}


def saga_actions_allowed(saga: SagaInstance, runs: Runs) -> list[str]:
    """Return the actions the saga's state allows, for a page to offer (no lock: a hint only).

    `runs` is the newest run per (step, direction), as engine.latest_runs returns it.
    """
    allowed = []
    for action, forbid in STATE_RULES.items():
        try:
            forbid(saga, runs)
        except Conflict:
            continue
        allowed.append(action)
    return allowed


# --- the shared shape of an operator action ---------------------------------------------------


def _operate(
    saga_id: uuid.UUID | str,
    action: str,
    reason: str,
    actor: str,
    preview: bool,
    check: Callable[[SagaInstance, Runs], None],
    simulate: Callable[[SagaInstance, States], str],
    apply: Callable[[SagaInstance, Runs, ActionResult], None],
) -> ActionResult:
    reason = (reason or "").strip()
    # A preview changes nothing and records nothing, so it needs no reason.
    if not reason and not preview:
        raise InvalidInput("a reason is required", path="reason")

    def act(view: engine.SagaRows) -> ActionResult:
        saga, runs = view.saga, view.latest_runs()
        try:
            check(saga, runs)
        except Conflict as exc:
            # Two operators collided: say who acted last and what they did.
            last = last_operator_act(saga)
            raise Conflict(f"{exc} (last: {last})" if last else str(exc)) from None
        specs, states = engine.plan_inputs(saga, runs)
        status = simulate(saga, states)
        result = ActionResult(
            action, saga, planner.remaining(specs, status, states), status_after=status
        )
        if not preview:
            apply(saga, runs, result)
            result.applied = True
        return result

    return engine.operate(_parse_id(saga_id), act, actor=actor)


def _parse_id(saga_id: uuid.UUID | str) -> uuid.UUID:
    try:
        return saga_id if isinstance(saga_id, uuid.UUID) else uuid.UUID(str(saga_id))
    except ValueError:
        raise NotFound(f"no saga with id {saga_id!r}: not a UUID") from None


def _require_stuck(saga: SagaInstance, action: str) -> None:
    if saga.status != SagaStatus.STUCK:
        raise Conflict(f"cannot {action} saga {saga.id}: it is {saga.status}, not STUCK")


def _blocking(saga: SagaInstance, runs: dict[tuple[str, str], Any]) -> tuple[str, str] | None:
    """Return the (step, direction) of the failed or cancelled run that holds the saga."""
    for (step, direction), run in runs.items():
        if direction == saga.stuck_direction and run.status in (
            StepStatus.FAILED,
            StepStatus.CANCELLED,
        ):
            return step, direction
    return None


def _every_blocking(saga: SagaInstance, runs: dict[tuple[str, str], Any]) -> list[tuple[str, str]]:
    """Return every failed or cancelled run in the stuck direction: parallel branches may have
    several, and a retry runs them all again (a linear saga has at most one)."""
    return [
        (step, direction)
        for (step, direction), run in runs.items()
        if direction == saga.stuck_direction
        and run.status in (StepStatus.FAILED, StepStatus.CANCELLED)
    ]


def _resume_status(saga: SagaInstance) -> str:
    if saga.stuck_direction == Direction.COMPENSATION:
        return SagaStatus.COMPENSATING
    return SagaStatus.RUNNING


def _committed_pivot(saga: SagaInstance, runs: Runs) -> str:
    for (step, direction), run in runs.items():
        if (
            direction == Direction.FORWARD
            and run.step.kind == StepKind.PIVOT
            and run.status == StepStatus.SUCCEEDED
        ):
            return step
    return ""


def saga_get(saga_id: uuid.UUID | str) -> SagaInstance:
    """Return the saga with this id, or raise NotFound."""
    try:
        return SagaInstance.objects.select_related("definition").get(pk=_parse_id(saga_id))
    except SagaInstance.DoesNotExist:
        raise NotFound(f"no saga with id {saga_id}") from None
