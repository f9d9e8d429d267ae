"""Answers to waiting steps: signals, task tokens and human tasks (the services every face calls).

Each answer is checked here (who may give it, what it carries) and applied by the engine under
the saga's lock, in one transaction with the step's outcome and the next step.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.db.models import QuerySet

from bpm import clock, engine, ownership, schemas, waits
from bpm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from bpm.models import (
    SagaInstance,
    Signal,
    StepRun,
    Wait,
    WaitKind,
    actor_for_user,
)
from bpm.states import EventType, StepStatus

# What a signal's payload, a token's output and a form's data may weigh, as JSON.
MAX_ANSWER_BYTES = 65_536
TOKEN_ACTOR = "task-token"
REFUSAL_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
SEND_SIGNAL = "bpm.start_saga"


def _checked_json(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"must be a JSON object, not {type(value).__name__}", path=path)
    size = len(json.dumps(value))
    if size > MAX_ANSWER_BYTES:
        raise InvalidInput(f"is {size} bytes of JSON, more than {MAX_ANSWER_BYTES}", path=path)
    return value


# --- signals -----------------------------------------------------------------------------------


def signal_send(*, saga_id: str, name: str, payload: Any, user: Any) -> tuple[Signal, bool]:
    """Send a saga a signal; return it and whether it was a duplicate.

    The saga's owner (a client) or anyone who sees every saga and may start them (operators) may
    send; a saga out of the user's sight is missing (404), as everywhere in the API.
    """
    saga = _visible_saga(saga_id, user)
    if not user.has_perm(SEND_SIGNAL):
        raise PermissionDenied(
            f"{user.get_username()} may not signal sagas: that needs the {SEND_SIGNAL} permission"
        )
    if not waits.SIGNAL_NAME.match(name):
        raise InvalidInput("is not a signal name", path="name")
    expected = sorted(
        {step.wait[waits.SIGNAL] for step in saga.definition.steps.all() if step.wait.get("signal")}
    )
    if name not in expected:
        raise InvalidInput(
            f"{saga.definition} waits for no signal {name!r}"
            f" (it waits for: {', '.join(expected) or 'none'})",
            path="name",
        )
    payload = _checked_json(payload, "payload")
    return engine.receive_signal(saga.pk, name, payload, actor=actor_for_user(user))


def _visible_saga(saga_id: str, user: Any) -> SagaInstance:
    try:
        pk = uuid.UUID(str(saga_id))
    except ValueError:
        raise NotFound(f"no saga with id {saga_id}") from None
    saga = ownership.visible_to(user, SagaInstance.objects.filter(pk=pk)).first()
    if saga is None:
        raise NotFound(f"no saga with id {saga_id}")
    return saga


# --- task tokens -------------------------------------------------------------------------------


def token_succeed(*, token: str, output: Any) -> StepRun:
    """Complete the step waiting on this token with `output`."""
    output = _checked_json(output, "output")
    answer = {"outcome": "succeed", "output": output}
    return _answer_token(token, answer, EventType.TOKEN_SUCCEEDED)


def token_fail(*, token: str, code: Any, message: Any) -> StepRun:
    """Refuse the step waiting on this token with a code and message."""
    if not isinstance(code, str) or not REFUSAL_CODE.match(code):
        raise InvalidInput("must be 1 to 64 of A-Z, 0-9 and _, starting with a letter", path="code")
    if not isinstance(message, str) or len(message) > 1000:
        raise InvalidInput("must be a text of at most 1000 characters", path="message")
    error = {"code": code, "message": message or code, "data": {}}
    return _answer_token(token, {"outcome": "fail", "error": error}, EventType.TOKEN_FAILED)


def _answer_token(token: str, answer: dict[str, Any], event: str) -> StepRun:
    if not isinstance(token, str) or not token.startswith(waits.TOKEN_PREFIX) or len(token) > 100:
        raise NotFound("no such task token")
    wait = Wait.objects.filter(kind=WaitKind.TOKEN, token_hash=waits.token_hash(token)).first()
    if wait is None:
        raise NotFound("no such task token")

    def act(view: engine.SagaRows, run: StepRun, wait: Wait) -> engine.Outcome | None:
        over = f"this task token was already used, or its step is over ({run.status})"
        if wait.closed_at is not None or not view.saga.is_active:
            raise Conflict(over)
        message = f"task token answered: {answer['outcome']}"
        if run.status == StepStatus.WAITING:
            run.log(event, TOKEN_ACTOR, message, data=answer)
            return engine.answer_outcome(answer)
        if run.status in (StepStatus.RUNNING, StepStatus.PENDING) and wait.early_answer is None:
            # The action that handed the token on has not returned yet (or an attempt of it
            # failed and the next one is due): keep the answer for when it returns.
            wait.early_answer = answer
            wait.save(update_fields=["early_answer"])
            run.log(event, TOKEN_ACTOR, message + " (kept until the action returns)", data=answer)
            return None
        raise Conflict(over)

    return engine.answer_wait(wait.run_id, act, actor=TOKEN_ACTOR)


# --- human tasks -------------------------------------------------------------------------------


def open_tasks() -> QuerySet[Wait]:
    """Return every human task still waiting for a person, oldest first."""
    return (
        Wait.objects.filter(kind=WaitKind.TASK, run__status=StepStatus.WAITING)
        .select_related("run", "run__step", "saga", "claimed_by")
        .order_by("created_at", "id")
    )


def tasks_for(user: Any) -> QuerySet[Wait]:
    """Return the open tasks of the user's groups (every open task for a superuser)."""
    tasks = open_tasks()
    if user.is_superuser:
        return tasks
    return tasks.filter(group__in=list(user.groups.values_list("name", flat=True)))


def task_counts(user: Any) -> dict[str, int]:
    """Return how many open tasks the user's groups have, and how many the user claimed."""
    tasks = tasks_for(user)
    return {
        "open": tasks.count(),
        "mine": tasks.filter(claimed_by=user).count(),
        "unclaimed": tasks.filter(claimed_by__isnull=True).count(),
    }


def is_member(user: Any, group: str) -> bool:
    """Return whether `user` works the tasks of `group`."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return bool(user.is_superuser or user.groups.filter(name=group).exists())


def task_get(task_id: Any, user: Any) -> Wait:
    """Return a human task the user may work, open or not; 404 unknown, 403 not a member."""
    try:
        pk = int(task_id)
    except (TypeError, ValueError):
        raise NotFound(f"no task with id {task_id}") from None
    task = (
        Wait.objects.filter(pk=pk, kind=WaitKind.TASK)
        .select_related("run", "run__step", "saga", "claimed_by")
        .first()
    )
    if task is None:
        raise NotFound(f"no task with id {task_id}")
    if not is_member(user, task.group):
        raise PermissionDenied(
            f"{user.get_username() or 'an anonymous user'} is not in the {task.group!r} group,"
            " whose members work this task"
        )
    return task


def _work(task_id: Any, user: Any, act: engine.AnswerWait) -> Wait:
    task = task_get(task_id, user)

    def checked(view: engine.SagaRows, run: StepRun, wait: Wait) -> engine.Outcome | None:
        if run.status != StepStatus.WAITING or not view.saga.is_active:
            raise Conflict(f"task {wait.pk} is closed: its step is {run.status}")
        return act(view, run, wait)

    engine.answer_wait(task.run_id, checked, actor=actor_for_user(user))
    return task_get(task.pk, user)


def _claimed_by_other(wait: Wait, user: Any) -> None:
    if wait.claimed_by_id is not None and wait.claimed_by_id != user.pk:
        claimer = wait.claimed_by.get_username() if wait.claimed_by else "another user"
        raise Conflict(f"task {wait.pk} is claimed by {claimer}")


def task_claim(*, task_id: Any, user: Any) -> Wait:
    """Claim a task for the user (claiming one's own claim again changes nothing)."""

    def act(view: engine.SagaRows, run: StepRun, wait: Wait) -> None:
        _claimed_by_other(wait, user)
        if wait.claimed_by_id == user.pk:
            return
        wait.claimed_by, wait.claimed_at = user, clock.now()
        wait.save(update_fields=["claimed_by", "claimed_at"])
        run.log(EventType.TASK_CLAIMED, actor_for_user(user), f"{wait.title}: claimed")

    return _work(task_id, user, act)


def task_unclaim(*, task_id: Any, user: Any) -> Wait:
    """Give a claimed task back to the group."""

    def act(view: engine.SagaRows, run: StepRun, wait: Wait) -> None:
        _claimed_by_other(wait, user)
        if wait.claimed_by_id is None:
            raise Conflict(f"task {wait.pk} is not claimed")
        wait.claimed_by, wait.claimed_at = None, None
        wait.save(update_fields=["claimed_by", "claimed_at"])
        run.log(EventType.TASK_UNCLAIMED, actor_for_user(user), f"{wait.title}: unclaimed")

    return _work(task_id, user, act)


def form_errors(task: Wait, data: Any) -> dict[str, str]:
    """Return the form's errors for `data` by field ("" for the form as a whole)."""
    if not isinstance(data, dict):
        return {"": f"must be a JSON object, not {type(data).__name__}"}
    size = len(json.dumps(data))
    if size > MAX_ANSWER_BYTES:
        return {"": f"is {size} bytes of JSON, more than {MAX_ANSWER_BYTES}"}
    return schemas.errors_by_field(task.form or {"type": "object"}, data)


def task_complete(*, task_id: Any, user: Any, data: Any) -> Wait:
    """Complete a task with the form's data, which becomes its step's output."""
    task = task_get(task_id, user)
    errors = form_errors(task, data)
    if errors:
        where, message = next(iter(errors.items()))
        raise InvalidInput(message, path=f"data.{where}" if where else "data")

    def act(view: engine.SagaRows, run: StepRun, wait: Wait) -> engine.Outcome:
        _claimed_by_other(wait, user)
        wait.claimed_by = user
        run.log(EventType.TASK_COMPLETED, actor_for_user(user), wait.title, data={"data": data})
        return engine.Outcome(engine.OutcomeKind.SUCCEEDED, output=data)

    return _work(task_id, user, act)


def task_reject(*, task_id: Any, user: Any, reason: Any) -> Wait:
    """Reject a task with a reason: its step is refused (the saga compensates before the pivot)."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a reason is required", path="reason")
    if len(reason) > 1000:
        raise InvalidInput("must be at most 1000 characters", path="reason")

    def act(view: engine.SagaRows, run: StepRun, wait: Wait) -> engine.Outcome:
        _claimed_by_other(wait, user)
        wait.claimed_by = user
        run.log(EventType.TASK_REJECTED, actor_for_user(user), reason)
        error = {"code": "TASK_REJECTED", "message": reason, "data": {"task": wait.pk}}
        return engine.Outcome(engine.OutcomeKind.REFUSED, error=error)

    return _work(task_id, user, act)
