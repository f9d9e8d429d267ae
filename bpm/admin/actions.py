"""Operator actions on selected sagas: a page asking for the reason and showing each plan, then
the action applied saga by saga through bpm.services, each outcome reported on its own line.

Skip takes the output to record; retry with edited input takes a JSON merge patch applied to each
selected saga (one saga alone goes to the dashboard's full input editor). With "select all N
sagas" (the changelist's current filter, every page) an action becomes a batch repair: the
operator is sent to the dashboard's batch confirmation with that filter (bpm.batches)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from bpm import permissions, services
from bpm.admin.display import short_id
from bpm.dashboard.saga_actions import JSONObjectField
from bpm.errors import Conflict, SagaError
from bpm.models import SagaInstance

if TYPE_CHECKING:
    from bpm.services import ActionResult

# One confirmation page lists every saga with its plan; more than this is a job for a command.
MAX_SELECTION = 100


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        help_text="Recorded in each saga's timeline with your name.",
        error_messages={"required": "A reason is required: it goes into each saga's timeline."},
    )

    def arguments(self) -> dict[str, Any]:
        """Return the service's keyword arguments besides the reason."""
        return {}


class SkipForm(ReasonForm):
    output = JSONObjectField(initial="{}", help_text="The output recorded for each skipped step.")

    field_order = ("output", "reason")

    def arguments(self) -> dict[str, Any]:
        return {"output": self.cleaned_data["output"]}


class PatchForm(ReasonForm):
    input_patch = JSONObjectField(
        label="Patch to the input",
        help_text="A JSON merge patch (RFC 7386) applied to each saga's input and checked against"
        ' its schema: {"email": "new@example.com"} sets a member, null removes one.',
    )

    field_order = ("input_patch", "reason")

    def arguments(self) -> dict[str, Any]:
        return {"input_patch": self.cleaned_data["input_patch"]}


@dataclass(frozen=True)
class OperatorAction:
    name: str
    title: str
    done: str
    service: Callable[..., ActionResult]
    form: type[ReasonForm] = ReasonForm
    # The permission it needs and the batch action it becomes for "all matching".
    permission: str = ""
    # Whether "select all N" may turn it into a batch repair (bpm.batches' actions).
    batchable: bool = True

    @property
    def batch_action(self) -> str:
        return self.permission or self.name


EDIT = "edit"
ACTIONS = {
    action.name: action
    for action in (
        OperatorAction(permissions.RETRY, "Retry", "retried", services.saga_retry),
        OperatorAction(
            permissions.COMPENSATE, "Compensate", "compensation started", services.saga_compensate
        ),
        OperatorAction(permissions.ABORT, "Abort", "aborted", services.saga_abort),
        OperatorAction(
            permissions.SKIP, "Skip the failed step of", "skipped", services.saga_skip, SkipForm
        ),
        OperatorAction(
            EDIT,
            "Retry with edited input",
            "retried with the patched input",
            services.saga_retry,
            PatchForm,
            permission=permissions.RETRY,
        ),
        # Pausing holds a saga and resuming lets it go on: both need the retry permission.
        OperatorAction(
            services.PAUSE,
            "Pause",
            "paused",
            services.saga_pause,
            permission=permissions.RETRY,
            batchable=False,
        ),
        OperatorAction(
            services.RESUME,
            "Resume",
            "resumed",
            services.saga_resume,
            permission=permissions.RETRY,
            batchable=False,
        ),
    )
}
# The changelist's filters (admin's query parameters) and the saga list's names for them.
CHANGELIST_FILTERS = {
    "status__exact": "status",
    "definition_name": "definition",
    "stuck_reason__exact": "reason",
    "q": "q",
    "created_at__gte": "created_from",
    "created_at__lt": "created_to",
}
# The changelist's own parameters that select nothing: ordering, page, facets, popups.
CHANGELIST_OWN = frozenset({"o", "p", "_facets", "e", "_changelist_filters"})


@dataclass(frozen=True)
class Preview:
    saga: SagaInstance
    plan: list[str]
    refusal: str = ""
    # The status the saga ends in if the plan succeeds.
    outcome: str = ""


def confirm_and_apply(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[SagaInstance], name: str
) -> TemplateResponse | HttpResponseRedirect | None:
    """Show the confirmation page, or apply the action to each saga once a reason is given.

    Returning None sends the operator back to the changelist, where the messages say what
    happened to each saga.
    """
    action = ACTIONS[name]
    if request.POST.get("select_across") == "1":
        return _all_matching(model_admin, request, action)
    if name == EDIT and queryset.count() == 1:
        # One saga: the dashboard's editor shows its whole input and checks it as it is typed.
        saga_id = queryset.values_list("id", flat=True).get()
        return HttpResponseRedirect(reverse("dashboard:saga_action", args=[saga_id, EDIT]))
    sagas = list(queryset.select_related("definition")[: MAX_SELECTION + 1])
    if len(sagas) > MAX_SELECTION:
        model_admin.message_user(
            request,
            f"Select at most {MAX_SELECTION} sagas at a time; nothing was changed.",
            messages.WARNING,
        )
        return None
    form = action.form(request.POST if request.POST.get("post") else None)
    if form.is_valid():
        for saga in sagas:
            _apply(model_admin, request, action, saga, form)
        return None
    return _confirmation(model_admin, request, action, sagas, form)


def _apply(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    action: OperatorAction,
    saga: SagaInstance,
    form: ReasonForm,
) -> None:
    try:
        result = action.service(
            saga_id=saga.id,
            reason=form.cleaned_data["reason"],
            user=request.user,
            **form.arguments(),
        )
    except SagaError as exc:
        level = messages.WARNING if isinstance(exc, Conflict) else messages.ERROR
        model_admin.message_user(
            request, f"saga {short_id(saga.id)}: {exc.code.replace('_', ' ')} — {exc}", level
        )
        return
    plan = result.describe()
    outcome = f"{action.done}, will {', then '.join(plan)}" if plan else action.done
    model_admin.message_user(request, f"saga {short_id(saga.id)}: {outcome}", messages.SUCCESS)


def _all_matching(
    model_admin: admin.ModelAdmin, request: HttpRequest, action: OperatorAction
) -> HttpResponseRedirect | None:
    """Send the operator to the batch confirmation of every saga the changelist's filter selects."""
    if not action.batchable:
        model_admin.message_user(
            request,
            f"{action.title} is not a batch repair: nothing was changed. Select sagas on this page"
            f" instead (at most {MAX_SELECTION}).",
            messages.WARNING,
        )
        return None
    query = QueryDict(mutable=True)
    for name, values in request.GET.lists():
        if name in CHANGELIST_OWN:
            continue
        if name not in CHANGELIST_FILTERS:
            model_admin.message_user(
                request,
                f"The filter {name!r} cannot be carried to a batch repair; nothing was changed."
                " Select sagas on this page instead, or filter the dashboard's list.",
                messages.WARNING,
            )
            return None
        for value in values:
            if name.startswith("created_at"):
                value = _local_minute(value)
            query.appendlist(CHANGELIST_FILTERS[name], value)
    query["action"] = action.batch_action
    return HttpResponseRedirect(f"{reverse('dashboard:batch_new')}?{query.urlencode()}")


def _local_minute(value: str) -> str:
    """Return the date filter's moment ("2026-12-01" or with a time and offset) as the saga
    list's datetime field takes it: local time, to the minute; unparseable stays as it is, for
    the list's form to reject."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        return f"{day.isoformat()}T00:00" if day else value
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime("%Y-%m-%dT%H:%M")


def _preview(request: HttpRequest, action: OperatorAction, saga: SagaInstance) -> Preview:
    try:
        result = action.service(saga_id=saga.id, user=request.user, preview=True)
    except SagaError as exc:
        return Preview(saga, [], refusal=f"{exc.code.replace('_', ' ')} — {exc}")
    return Preview(saga, result.describe(), outcome=result.outcome())


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
