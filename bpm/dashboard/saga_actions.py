"""The saga page's actions: a confirmation showing the preview, then the action applied.

GET answers with the confirmation (the service's preview and a form needing a reason); POST
applies the action through the service as `request.user`. htmx asks for the confirmation as a
fragment for the page's action panel; without htmx both are whole pages and success redirects
back to the saga with a message.

Errors keep their HTTP status (400 invalid, 403 not allowed, 409 conflict) for htmx too: the saga
templates configure htmx (`responseHandling` in a meta tag) to swap those responses into the
panel, so the operator sees the error beside the form they filled in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from bpm import permissions, services
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.fragment import wants_fragment
from bpm.dashboard.saga_page import ACTIONS, LIVE, Action, live_context, load_saga, pretty
from bpm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from bpm.models import SagaInstance

FRAGMENT = "dashboard/_saga_action.html"
PAGE = "dashboard/saga_action.html"
CONFLICT = "Another operator acted first, or the saga moved on"


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why: it is recorded in the saga's timeline with your name.",
        error_messages={"required": "A reason is required."},
    )

    def arguments(self) -> dict[str, Any]:
        """Return the service's keyword arguments from the cleaned data."""
        return {"reason": self.cleaned_data["reason"]}


class JSONObjectField(forms.CharField):
    """A JSON object typed into a textarea; the message says where the syntax breaks."""

    # data-json-editor: the confirmation's small script checks the JSON as it is typed.
    widget = forms.Textarea(
        attrs={"rows": 12, "cols": 60, "spellcheck": "false", "data-json-editor": ""}
    )

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            # Empty: the `required` check reports it.
            return None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError(f"Must be a JSON object, not {type(parsed).__name__}.")
        return parsed

    def validate(self, value: Any) -> None:
        # `{}` is a valid object, though Django counts it among the empty values.
        if value is None and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")


class EditInputForm(ReasonForm):
    input = JSONObjectField(help_text="The new input, checked against the definition's schema.")
    # Where a step's recorded output is what needs correcting, such as the address take_payment
    # recorded for place_order's confirmation.
    context = JSONObjectField(
        required=False,
        help_text="Outputs of finished steps to replace, by step name; {} changes nothing.",
    )

    field_order = ("input", "context", "reason")

    def arguments(self) -> dict[str, Any]:
        arguments = {**super().arguments(), "input": self.cleaned_data["input"]}
        if self.cleaned_data.get("context"):
            arguments["context"] = self.cleaned_data["context"]
        return arguments


class SkipForm(ReasonForm):
    output = JSONObjectField(help_text="The output to record for the skipped step.")

    field_order = ("output", "reason")

    def arguments(self) -> dict[str, Any]:
        return {**super().arguments(), "output": self.cleaned_data["output"]}


class RerunForm(ReasonForm):
    step = forms.ChoiceField(
        help_text="This step and every later one that ran run again; the plan above follows it."
    )
    input = JSONObjectField(
        required=False,
        help_text="The input the rerun uses (checked against the schema): correct it here.",
    )
    context = JSONObjectField(
        required=False,
        help_text="Outputs of finished steps to replace, by step name; {} changes nothing.",
    )

    field_order = ("step", "input", "context", "reason")

    def __init__(self, *args: Any, steps: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["step"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(name, name) for name in steps or []]

    def arguments(self) -> dict[str, Any]:
        arguments = {**super().arguments(), "step": self.cleaned_data["step"]}
        if self.cleaned_data.get("input") is not None:
            arguments["input"] = self.cleaned_data["input"]
        if self.cleaned_data.get("context"):
            arguments["context"] = self.cleaned_data["context"]
        return arguments


FORMS: dict[str, type[ReasonForm]] = {
    "edit": EditInputForm,
    "skip": SkipForm,
    "rerun": RerunForm,
}
SERVICES: dict[str, Callable[..., services.ActionResult]] = {
    "retry": services.saga_retry,
    "edit": services.saga_retry,
    "skip": services.saga_skip,
    "compensate": services.saga_compensate,
    "abort": services.saga_abort,
    "rerun": services.saga_rerun,
    "pause": services.saga_pause,
    "resume": services.saga_resume,
}


@dashboard_view
@require_http_methods(["GET", "POST"])
def saga_action(request: HttpRequest, saga_id: uuid.UUID, action: str) -> HttpResponse:
    """Confirm (GET) or apply (POST) an operator action on a saga."""
    if action not in ACTIONS:
        raise Http404(f"no action {action!r}; the actions are {', '.join(ACTIONS)}")
    spec = ACTIONS[action]
    saga = _saga(saga_id)
    if not permissions.may(request.user, spec.permission):
        return _forbidden(request, saga, spec, _refusal(request.user, spec))
    if request.method == "POST":
        return _apply(request, saga, spec)
    return _confirmation(
        request, saga, spec, _form(saga, spec, None, _initial(request, saga, action))
    )


def _form(
    saga: SagaInstance, spec: Action, data: Any, initial: dict[str, Any] | None = None
) -> ReasonForm:
    if spec.name == "rerun":
        steps = services.rerun_steps(saga, load_saga(saga.id).latest)
        form = RerunForm(data, initial=initial, steps=steps)
        # Choosing another step asks for the confirmation again, with that step's plan.
        form.fields["step"].widget.attrs.update(
            {
                "hx-get": reverse("dashboard:saga_action", args=[saga.id, "rerun"]),
                "hx-trigger": "change",
                "hx-target": "#saga-action-panel",
            }
        )
        return form
    return FORMS.get(spec.name, ReasonForm)(data, initial=initial)


def _saga(saga_id: uuid.UUID) -> SagaInstance:
    try:
        return services.saga_get(saga_id)
    except NotFound as exc:
        raise Http404(str(exc)) from None


def _initial(request: HttpRequest, saga: SagaInstance, action: str) -> dict[str, Any]:
    if action == "rerun":
        return {"step": request.GET.get("step", ""), "input": pretty(saga.input), "context": "{}"}
    if action == "edit":
        return {"input": pretty(saga.input), "context": "{}"}
    if action == "skip":
        return {"output": "{}"}
    return {}


def _apply(request: HttpRequest, saga: SagaInstance, spec: Action) -> HttpResponse:
    form = _form(saga, spec, request.POST)
    if not form.is_valid():
        return _confirmation(request, saga, spec, form, status=400)
    try:
        result = SERVICES[spec.name](saga_id=saga.id, user=request.user, **form.arguments())
    except InvalidInput as exc:
        form.add_error(_field_of(exc.path, form), str(exc))
        return _confirmation(request, saga, spec, form, status=400)
    except Conflict as exc:
        return _confirmation(request, saga, spec, form, status=409, conflict=f"{CONFLICT}: {exc}")
    except PermissionDenied as exc:
        return _forbidden(request, saga, spec, str(exc))
    notice = _notice(spec, result)
    if wants_fragment(request):
        context = live_context(load_saga(saga.id), request.user, notice=notice)
        response = render(request, LIVE, context)
        # The form asked to swap the panel; on success the whole live region is new instead.
        response["HX-Retarget"] = "#saga-live"
        response["HX-Reswap"] = "outerHTML"
        return response
    messages.success(request, notice, extra_tags="saga-notice")
    return redirect("dashboard:saga", saga_id=saga.id)


def _field_of(path: str, form: ReasonForm) -> str | None:
    """Return the form field an error's path points into, or None for the whole form."""
    head = path.split(".")[0].split("[")[0]
    return head if head in form.fields else None


def _notice(spec: Action, result: services.ActionResult) -> str:
    if spec.name == "pause":
        return "Paused: a running step finishes, no new step starts until you resume."
    # dashboard.js keeps "The saga is now …." true while the page refreshes the saga.
    plan = "; ".join(result.describe()) or "nothing more runs"
    return f"{spec.label} applied. Plan: {plan}. The saga is now {result.saga.status}."


def _preview(
    request: HttpRequest, saga: SagaInstance, spec: Action, form: ReasonForm
) -> services.ActionResult:
    """Return what the action would do now; raise Conflict if the state forbids it."""
    arguments: dict[str, Any] = {}
    if isinstance(form, RerunForm):
        choices = [value for value, _ in form.fields["step"].choices]  # type: ignore[attr-defined]
        chosen = form.data.get("step") if form.is_bound else form.initial.get("step")
        if not choices:
            services.saga_rerun(saga_id=saga.id, step="", user=request.user, preview=True)
        arguments["step"] = chosen if chosen in choices else choices[-1]
        form.initial["step"] = arguments["step"]
    return SERVICES[spec.name](saga_id=saga.id, user=request.user, preview=True, **arguments)


def _confirmation(
    request: HttpRequest,
    saga: SagaInstance,
    spec: Action,
    form: ReasonForm,
    *,
    status: int = 200,
    conflict: str = "",
) -> HttpResponse:
    plan: list[str] | None = None
    outcome = ""
    if not conflict:
        try:
            preview = _preview(request, saga, spec, form)
            plan, outcome = preview.describe(), preview.outcome()
        except (Conflict, InvalidInput) as exc:
            conflict, status = f"{CONFLICT}: {exc}", 409
    context = {
        "saga": saga,
        "action": spec,
        # A conflict on first sight leaves nothing to fill in; after a POST the form stays filled.
        "form": form if form.is_bound or not conflict else None,
        "plan": plan,
        "outcome": outcome,
        "conflict": conflict,
        "schema": saga.definition.input_schema if spec.name == "edit" else None,
    }
    return _render(request, saga, spec, context, status)


def _forbidden(
    request: HttpRequest, saga: SagaInstance, spec: Action, message: str
) -> HttpResponse:
    if not wants_fragment(request):
        raise HttpForbidden(message)
    context = {"saga": saga, "action": spec, "form": None, "plan": None, "forbidden": message}
    return _render(request, saga, spec, context, 403)


def _refusal(user: Any, spec: Action) -> str:
    required = permissions.REQUIRED[spec.permission]
    return f"{user.get_username()} may not {spec.permission} sagas: that needs {required}."


def _render(
    request: HttpRequest, saga: SagaInstance, spec: Action, context: dict[str, Any], status: int
) -> HttpResponse:
    if wants_fragment(request):
        return render(request, FRAGMENT, {**context, "fragment": True}, status=status)
    title = f"{spec.label}: {saga.definition_name} {saga.id}"
    page = page_context(request, title, tab="sagas", **context)
    return render(request, PAGE, page, status=status)
