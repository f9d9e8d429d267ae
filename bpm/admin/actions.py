"""Operator actions on selected sagas: a page asking for the reason and showing each plan, then
the action applied saga by saga through bpm.services, each outcome reported on its own line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from bpm import permissions, services
from bpm.admin.display import short_id
from bpm.errors import Conflict, SagaError
from bpm.models import SagaInstance

if TYPE_CHECKING:
    from bpm.services import ActionResult

# One confirmation page lists every saga with its plan; more than this is a job for a command.
MAX_SELECTION = 100


@dataclass(frozen=True)
class OperatorAction:
    name: str
    title: str
    done: str
    service: Callable[..., ActionResult]


ACTIONS = {
    action.name: action
    for action in (
        OperatorAction(permissions.RETRY, "Retry", "retried", services.saga_retry),
        OperatorAction(
            permissions.COMPENSATE, "Compensate", "compensation started", services.saga_compensate
        ),
        OperatorAction(permissions.ABORT, "Abort", "aborted", services.saga_abort),
        OperatorAction(services.PAUSE, "Pause", "paused", services.saga_pause),
        OperatorAction(services.RESUME, "Resume", "resumed", services.saga_resume),
    )
}


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        help_text="Recorded in each saga's timeline with your name.",
        error_messages={"required": "A reason is required: it goes into each saga's timeline."},
    )


@dataclass(frozen=True)
class Preview:
    saga: SagaInstance
    plan: list[str]
    refusal: str = ""


def confirm_and_apply(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[SagaInstance], name: str
) -> TemplateResponse | None:
    """Show the confirmation page, or apply the action to each saga once a reason is given.

    Returning None sends the operator back to the changelist, where the messages say what
    happened to each saga.
    """
    action = ACTIONS[name]
    sagas = list(queryset.select_related("definition")[: MAX_SELECTION + 1])
    if len(sagas) > MAX_SELECTION:
        model_admin.message_user(
            request,
            f"Select at most {MAX_SELECTION} sagas at a time; nothing was changed.",
            messages.WARNING,
        )
        return None
    form = ReasonForm(request.POST if request.POST.get("post") else None)
    if form.is_valid():
        for saga in sagas:
            _apply(model_admin, request, action, saga, form.cleaned_data["reason"])
        return None
    return _confirmation(model_admin, request, action, sagas, form)


def _apply(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    action: OperatorAction,
    saga: SagaInstance,
    reason: str,
) -> None:
    try:
        result = action.service(saga_id=saga.id, reason=reason, user=request.user)
    except SagaError as exc:
        level = messages.WARNING if isinstance(exc, Conflict) else messages.ERROR
        model_admin.message_user(
            request, f"saga {short_id(saga.id)}: {exc.code.replace('_', ' ')} — {exc}", level
        )
        return
    plan = result.describe()
    outcome = f"{action.done}, will {', then '.join(plan)}" if plan else action.done
    model_admin.message_user(request, f"saga {short_id(saga.id)}: {outcome}", messages.SUCCESS)


def _preview(request: HttpRequest, action: OperatorAction, saga: SagaInstance) -> Preview:
    try:
        result = action.service(saga_id=saga.id, user=request.user, preview=True)
    except SagaError as exc:
        return Preview(saga, [], refusal=f"{exc.code.replace('_', ' ')} — {exc}")
    return Preview(saga, result.describe())


def _confirmation(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    action: OperatorAction,
    sagas: list[SagaInstance],
    form: ReasonForm,
) -> TemplateResponse:
    opts = model_admin.model._meta
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"{action.title} {len(sagas)} saga{'' if len(sagas) == 1 else 's'}",
        "opts": opts,
        "action": action,
        "previews": [_preview(request, action, saga) for saga in sagas],
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/bpm/sagainstance/action_confirmation.html", context)
