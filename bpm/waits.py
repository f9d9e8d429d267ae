"""The waits a step may declare, their validation, and task tokens.

A wait step's `wait` is one of (every timeout in seconds, an int or a float, at most 30 days):

    {"signal": "<name>", "timeout": 3600}
        the step waits for POST /api/v1/sagas/<id>/signals/<name>/; its payload is the output.
    {"task_token": {}, "timeout": 600}
        the step's action runs with `ctx.task_token` and passes it on; the step then waits for
        POST /api/v1/tasks/<token>/succeed/ (the body is the output) or /fail/ (a refusal).
    {"task": {"group": "<group>", "title": "...", "form": <JSON schema>}, "timeout": 86400}
        a person of the group completes the form (its data is the output) or rejects the task.

Signal and task waits run no action; a task-token wait is the one with an action (the call that
hands the token to whoever will answer). Any of them may have a compensation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from django.conf import settings

from bpm import schemas

SIGNAL = "signal"
TASK_TOKEN = "task_token"
TASK = "task"
KINDS = (SIGNAL, TASK_TOKEN, TASK)
MAX_TIMEOUT = 30 * 24 * 3600.0
MAX_WAIT_BYTES = 16_384
SIGNAL_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
TASK_KEYS = {"group", "title", "form"}
TOKEN_PREFIX = "tt_"


def kind_of(wait: dict[str, Any] | None) -> str:
    """Return the wait's kind ("signal", "task_token" or "task"), "" for a step that waits not."""
    if not wait:
        return ""
    return next((kind for kind in KINDS if kind in wait), "")


def runs_no_action(wait: dict[str, Any] | None) -> bool:
    """Return whether a step with this wait has no action: signal and task waits."""
    return kind_of(wait) in (SIGNAL, TASK)


def timeout_of(wait: dict[str, Any]) -> float:
    """Return how long the wait lasts, in seconds."""
    return float(wait["timeout"])


def wait_problems(wait: Any) -> list[str]:
    """Return what is wrong with a step's `wait` (empty when it is usable or absent)."""
    if wait is None or wait == {}:
        return []
    if not isinstance(wait, dict):
        return [f"wait must be a JSON object, not {type(wait).__name__}"]
    try:
        size = len(json.dumps(wait))
    except (TypeError, ValueError) as exc:
        return [f"wait is not JSON: {exc}"]
    if size > MAX_WAIT_BYTES:
        return [f"wait is {size} bytes of JSON, more than {MAX_WAIT_BYTES}"]
    kinds = [kind for kind in KINDS if kind in wait]
    unknown = sorted(set(wait) - {*KINDS, "timeout"})
    problems = [f"wait has unknown key {key!r}" for key in unknown]
    if len(kinds) != 1:
        problems.append(
            f"wait needs exactly one of {', '.join(KINDS)}, found {', '.join(kinds) or 'none'}"
        )
    problems.extend(_timeout_problems(wait.get("timeout")))
    if kinds == [SIGNAL]:
        problems.extend(_signal_problems(wait[SIGNAL]))
    elif kinds == [TASK_TOKEN]:
        if wait[TASK_TOKEN] != {}:
            problems.append("wait.task_token takes no options: write {}")
    elif kinds == [TASK]:
        problems.extend(_task_problems(wait[TASK]))
    return problems


def _timeout_problems(timeout: Any) -> list[str]:
    if timeout is None:
        return ["wait.timeout is required (seconds)"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        return [f"wait.timeout must be a number of seconds, not {type(timeout).__name__}"]
    if not 0 < timeout <= MAX_TIMEOUT:
        return [f"wait.timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds"]
    return []


def _signal_problems(name: Any) -> list[str]:
    if not isinstance(name, str) or not SIGNAL_NAME.match(name):
        return [
            "wait.signal must be a name of 1 to 100 lower-case letters, digits, '_', '.' or '-'"
            f" starting with a letter or digit, not {name!r}"
        ]
    return []


def _task_problems(task: Any) -> list[str]:
    if not isinstance(task, dict):
        return [f"wait.task must be a JSON object, not {type(task).__name__}"]
    problems = [f"wait.task has unknown key {key!r}" for key in sorted(set(task) - TASK_KEYS)]
    problems.extend(f"wait.task.{key} is required" for key in sorted(TASK_KEYS - set(task)))
    group, title, form = task.get("group"), task.get("title"), task.get("form")
    if "group" in task:
        if not isinstance(group, str) or not group:
            problems.append("wait.task.group must be a group's name")
        elif not _group_exists(group):
            problems.append(f"wait.task.group: no group named {group!r}")
    if "title" in task and (not isinstance(title, str) or not 0 < len(title) <= 200):
        problems.append("wait.task.title must be 1 to 200 characters")
    if "form" in task:
        problems.extend(f"wait.task.form: {problem}" for problem in form_problems(form))
    return problems


def form_problems(form: Any) -> list[str]:
    """Return what makes `form` unusable as a task's form: a JSON schema of an object."""
    problems = schemas.schema_problems(form)
    if not problems and form.get("type") != "object":
        problems.append('a form must be a schema of "type": "object"')
    return problems


def _group_exists(name: str) -> bool:
    from django.contrib.auth.models import Group

    return Group.objects.filter(name=name).exists()


# --- task tokens -------------------------------------------------------------------------------


def token_for(run_id: int, saga_id: Any) -> str:
    """Return the task token of a run: the same for every attempt of its action, unguessable.

    Derived (HMAC with the SECRET_KEY) rather than stored, so a retried action hands on the same
    token and only its hash is kept in the database.
    """
    message = f"bpm.task-token:{saga_id}:{run_id}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """Return what the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()
