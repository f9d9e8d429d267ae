"""Pause or resume a whole definition version from the definitions page.

The same pattern as the saga actions (bpm/dashboard/saga_actions.py): GET answers with the
confirmation (the service's preview: how many unfinished sagas the pause holds or the resume lets
go) and a form needing a reason; POST applies it through the service as `request.user`. htmx asks
for the confirmation as a fragment for the definition page's panel; without htmx both are whole
pages and success redirects back to the version's page with a message.

Errors keep their HTTP status (400 invalid, 403 not allowed, 404 unknown version, 409 conflict);
the definition page configures htmx to swap 400, 403 and 409 into the panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from bpm import permissions, services
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.fragment import wants_fragment
from bpm.dashboard.saga_actions import ReasonForm
from bpm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from bpm.models import SagaDefinition

FRAGMENT = "dashboard/_definition_pause.html"
PAGE = "dashboard/definition_pause.html"
CONFLICT = "Another operator acted first, or the version moved on"
LABELS = {"pause": "Pause this version", "resume": "Resume this version"}
SERVICES: dict[str, Callable[..., services.DefinitionPauseResult]] = {
    "pause": services.definition_pause,
    "resume": services.definition_resume,
}


class DefinitionReasonForm(ReasonForm):
    """A reason, recorded in the version's audit trail and in each held saga's timeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].help_text = (
            "Why: it is recorded in the version's audit trail and in the timeline of every saga "
            "it holds or lets go, with your name."
        )


@dashboard_view
@require_http_methods(["GET", "POST"])
def definition_pause(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """Confirm (GET) or apply (POST) pausing or resuming a definition version (?version=N)."""
    if action not in SERVICES:
        raise Http404(f"no action {action!r}; the actions are pause, resume")
    source = request.POST if request.method == "POST" else request.GET
    raw = source.get("version", "")
    context: dict[str, Any] = {"name": name, "action": action, "label": LABELS[action]}
    try:
        version = int(raw)
    except ValueError:
        context["invalid"] = f"“{raw}” is not a version number: give ?version=N, such as 1."
        return _render(request, context, 400)
    definition = SagaDefinition.objects.filter(name=name, version=version).first()
    if definition is None:
        raise Http404(f"There is no saga definition “{name}” version {version}.")
    context["definition"] = definition
    if not permissions.may(request.user, permissions.RETRY):
        return _forbidden(request, context, _refusal(request.user, action))
    if request.method == "POST":
        return _apply(request, definition, context)
    return _confirmation(request, context, DefinitionReasonForm())


def _apply(
    request: HttpRequest, definition: SagaDefinition, context: dict[str, Any]
) -> HttpResponse:
    action = context["action"]
    form = DefinitionReasonForm(request.POST)
    if not form.is_valid():
        return _confirmation(request, context, form, status=400)
    if _unpublished(definition, action):
        conflict = _unpublished(definition, action)
        return _confirmation(request, context, form, status=409, conflict=conflict)
    try:
        result = SERVICES[action](
            name=definition.name,
            version=definition.version,
            user=request.user,
            reason=form.cleaned_data["reason"],
        )
    except InvalidInput as exc:
        form.add_error("reason", str(exc))
        return _confirmation(request, context, form, status=400)
    except Conflict as exc:
        return _confirmation(request, context, form, status=409, conflict=f"{CONFLICT}: {exc}")
    except PermissionDenied as exc:
        return _forbidden(request, context, str(exc))
    except NotFound as exc:
        raise Http404(str(exc)) from None
    messages.success(request, _notice(action, result), extra_tags="definition-notice")
    page = f"{reverse('dashboard:definition', args=[definition.name])}?version={definition.version}"
    if wants_fragment(request):
        return HttpResponseClientRedirect(page)
    return redirect(page)


def _unpublished(definition: SagaDefinition, action: str) -> str:
    """Return why `definition` may not be paused (it starts no saga), or "" if it may."""
    if action != "pause" or definition.is_published:
        return ""
    return f"{definition} is {definition.status}: only a published version can be paused"


def _notice(action: str, result: services.DefinitionPauseResult) -> str:
    sagas = f"{result.sagas} unfinished saga{'s' if result.sagas != 1 else ''}"
    if action == "pause":
        return (
            f"{result.definition} paused: {sagas} held (running steps finish, no new step "
            "starts); sagas started from now on start paused."
        )
    return f"{result.definition} resumed: {sagas} let go."


def _confirmation(
    request: HttpRequest,
    context: dict[str, Any],
    form: DefinitionReasonForm,
    *,
    status: int = 200,
    conflict: str = "",
) -> HttpResponse:
    definition: SagaDefinition = context["definition"]
    sagas: int | None = None
    if not conflict:
        if _unpublished(definition, context["action"]):
            conflict, status = _unpublished(definition, context["action"]), 409
        else:
            try:
                preview = SERVICES[context["action"]](
                    name=definition.name,
                    version=definition.version,
                    user=request.user,
                    preview=True,
                )
                sagas = preview.sagas
            except Conflict as exc:
                conflict, status = f"{CONFLICT}: {exc}", 409
    context = {
        **context,
        # A conflict on first sight leaves nothing to fill in; after a POST the form stays filled.
        "form": form if form.is_bound or not conflict else None,
        "sagas": sagas,
        "conflict": conflict,
    }
    return _render(request, context, status)


def _forbidden(request: HttpRequest, context: dict[str, Any], message: str) -> HttpResponse:
    if not wants_fragment(request):
        raise HttpForbidden(message)
    return _render(request, {**context, "form": None, "forbidden": message}, 403)


def _refusal(user: Any, action: str) -> str:
    required = permissions.REQUIRED[permissions.RETRY]
    return (
        f"{user.get_username()} may not {action} definition versions: that needs {required} "
        f"(the {permissions.OPERATORS} group)"
    )


def _render(request: HttpRequest, context: dict[str, Any], status: int) -> HttpResponse:
    if wants_fragment(request):
        return render(request, FRAGMENT, {**context, "fragment": True}, status=status)
    definition = context.get("definition")
    title = f"{context['label']}: {definition or context['name']}"
    page = page_context(request, title, tab="definitions", **context)
    return render(request, PAGE, page, status=status)
