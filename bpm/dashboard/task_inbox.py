"""The task inbox: the human tasks of the groups one is in, claimed, completed or rejected.

A task's form is a Django form built from its JSON schema (strings, choices, numbers, booleans;
anything else as JSON text). What the form cleans is checked again against the schema on the
server (bpm.answers), and each error is shown next to its field.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from bpm import answers
from bpm.dashboard.access import dashboard_view, page_context
from bpm.errors import Conflict, InvalidInput, PermissionDenied
from bpm.models import Wait

ACTIONS = ("claim", "unclaim", "complete", "reject")


class JSONTextField(forms.CharField):
    """A property the form cannot draw as a plain input: typed as JSON."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None


def field_for(schema: dict[str, Any], *, required: bool) -> forms.Field:
    """Return the form field that draws one property of a task's form."""
    label = schema.get("title")
    help_text = schema.get("description", "")
    common: dict[str, Any] = {"label": label, "help_text": help_text, "required": required}
    kind = schema.get("type")
    if "enum" in schema and all(isinstance(choice, str) for choice in schema["enum"]):
        choices = [("", "—"), *((choice, choice) for choice in schema["enum"])]
        return forms.ChoiceField(choices=choices, **common)
    if kind == "string":
        return forms.CharField(
            max_length=schema.get("maxLength"),
            min_length=schema.get("minLength"),
            widget=forms.Textarea(attrs={"rows": 2})
            if schema.get("maxLength", 201) > 200
            else None,
            **common,
        )
    if kind == "integer":
        return forms.IntegerField(
            min_value=schema.get("minimum"), max_value=schema.get("maximum"), **common
        )
    if kind == "number":
        return forms.DecimalField(
            min_value=schema.get("minimum"), max_value=schema.get("maximum"), **common
        )
    if kind == "boolean":
        # A checkbox says true or false: never "missing".
        return forms.BooleanField(label=label, help_text=help_text, required=False)
    return JSONTextField(**common)


def task_form(task: Wait, data: Any = None) -> forms.Form:
    """Return the form drawn from the task's JSON schema, bound to `data` when given."""
    schema = task.form or {"type": "object"}
    required = set(schema.get("required", []))
    form = forms.Form(data=data, prefix="data")
    for name, prop in schema.get("properties", {}).items():
        if isinstance(prop, dict):
            form.fields[name] = field_for(prop, required=name in required)
    return form


def form_data(form: forms.Form) -> dict[str, Any]:
    """Return the cleaned form as the JSON the schema checks: blanks left out."""
    data: dict[str, Any] = {}
    for name, value in form.cleaned_data.items():
        if value in (None, "") and not isinstance(form.fields[name], forms.BooleanField):
            continue
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        data[name] = value
    return data


@dashboard_view
def task_list(request: HttpRequest) -> HttpResponse:
    """Render the open tasks of the user's groups, the ones the user claimed first."""
    tasks = list(answers.tasks_for(request.user))
    tasks.sort(key=lambda task: task.claimed_by_id != request.user.pk)
    groups = list(request.user.groups.values_list("name", flat=True))
    context = page_context(request, "Task inbox", tab="tasks", tasks=tasks, groups=groups)
    return render(request, "dashboard/tasks.html", context)


@dashboard_view
def task_page(request: HttpRequest, task_id: int) -> HttpResponse:
    """Render one task with its form; POST claims, unclaims, completes or rejects it."""
    task = _task_or_403(request, task_id)
    form = task_form(task)
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action not in ACTIONS:
                raise InvalidInput(f"unknown action {action!r}", path="action")
            if action == "complete":
                form = task_form(task, request.POST)
                if form.is_valid():
                    return _apply(request, task, action, data=form_data(form), form=form)
                status = 400
            else:
                return _apply(request, task, action, form=form)
        except (Conflict, InvalidInput) as exc:
            messages.error(request, str(exc))
            status = 409 if isinstance(exc, Conflict) else 400
        task = _task_or_403(request, task_id)
    context = page_context(
        request,
        f"Task: {task.title}",
        tab="tasks",
        task=task,
        form=form,
        is_open=task.run.status == "WAITING" and task.saga.is_active,
        mine=task.claimed_by_id == request.user.pk,
    )
    return render(request, "dashboard/task.html", context, status=status)


def _task_or_403(request: HttpRequest, task_id: int) -> Wait:
    try:
        return answers.task_get(task_id, request.user)
    except PermissionDenied as exc:
        from django.core.exceptions import PermissionDenied as Forbidden

        raise Forbidden(str(exc)) from None


def _apply(
    request: HttpRequest, task: Wait, action: str, *, form: forms.Form, data: Any = None
) -> HttpResponse:
    """Apply the action; a form error found by the schema is shown next to its field."""
    user = request.user
    if action == "claim":
        answers.task_claim(task_id=task.pk, user=user)
        messages.success(request, f"You claimed “{task.title}”.")
    elif action == "unclaim":
        answers.task_unclaim(task_id=task.pk, user=user)
        messages.success(request, f"You gave “{task.title}” back to {task.group}.")
    elif action == "complete":
        errors = answers.form_errors(task, data)
        if errors:
            for where, message in errors.items():
                field = where.split(".")[0]
                form.add_error(field if field in form.fields else None, message)
            raise InvalidInput("the form has errors")
        answers.task_complete(task_id=task.pk, user=user, data=data)
        messages.success(request, f"You completed “{task.title}”.")
    else:
        answers.task_reject(task_id=task.pk, user=user, reason=request.POST.get("reason", ""))
        messages.success(request, f"You rejected “{task.title}”: its saga is refused that step.")
    if action in ("claim", "unclaim"):
        return redirect(reverse("dashboard:task", args=[task.pk]))
    return redirect(reverse("dashboard:tasks"))
