"""Who is on a saga, from its page: assign it (to yourself or a colleague), acknowledge it,
comment on it. Each form posts here and goes through bpm.services; the answer is the saga's live
region (htmx) or a redirect back to the saga with a message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from bpm import permissions, services
from bpm.dashboard.access import dashboard_view
from bpm.dashboard.fragment import wants_fragment
from bpm.dashboard.saga_page import LIVE, live_context, load_saga
from bpm.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class AssignForm(forms.Form):
    assignee = forms.CharField(
        required=False, max_length=150, help_text="An operator's username; empty to unassign."
    )
    reason = forms.CharField(required=False, max_length=services.COMMENT_LENGTH)


class CommentForm(forms.Form):
    text = forms.CharField(max_length=services.COMMENT_LENGTH, strip=True)


def _assign(request: HttpRequest, saga_id: uuid.UUID) -> str:
    form = AssignForm(request.POST)
    if not form.is_valid():
        raise InvalidInput(form.errors.as_text(), path="assignee")
    assignee = form.cleaned_data["assignee"].strip() or None
    if assignee == "me":
        assignee = request.user.get_username()
    saga = services.saga_assign(
        saga_id=saga_id, assignee=assignee, reason=form.cleaned_data["reason"], user=request.user
    )
    return f"Assigned to {saga.assignee.get_username()}." if saga.assignee else "Unassigned."


def _acknowledge(request: HttpRequest, saga_id: uuid.UUID) -> str:
    services.saga_acknowledge(saga_id=saga_id, user=request.user)
    return "Acknowledged."


def _comment(request: HttpRequest, saga_id: uuid.UUID) -> str:
    form = CommentForm(request.POST)
    if not form.is_valid():
        raise InvalidInput(
            " ".join(str(e) for e in form.errors.get("text", ["invalid"])), path="text"
        )
    services.saga_comment(saga_id=saga_id, text=form.cleaned_data["text"], user=request.user)
    return "Comment added."


CHANGES: dict[str, Callable[[HttpRequest, uuid.UUID], str]] = {
    "assign": _assign,
    "acknowledge": _acknowledge,
    "comment": _comment,
}


@dashboard_view
@require_POST
def saga_ownership(request: HttpRequest, saga_id: uuid.UUID, change: str) -> HttpResponse:
    """Assign, acknowledge or comment on a saga, then show the saga again."""
    if change not in CHANGES:
        raise Http404(f"no such change {change!r}; the changes are {', '.join(CHANGES)}")
    if not permissions.may(request.user, permissions.RETRY):
        raise HttpForbidden(
            f"{request.user.get_username()} may not {change} sagas: that needs the operators'"
            " bpm.retry_saga permission."
        )
    status, error, notice = 200, "", ""
    try:
        notice = CHANGES[change](request, saga_id)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    except InvalidInput as exc:
        status, error = 400, str(exc)
    except Conflict as exc:
        status, error = 409, str(exc)
    except PermissionDenied as exc:
        raise HttpForbidden(str(exc)) from None
    if wants_fragment(request):
        context = live_context(
            load_saga(saga_id), request.user, notice=notice, ownership_error=error
        )
        response = render(request, LIVE, context, status=status)
        response["HX-Retarget"] = "#saga-live"
        response["HX-Reswap"] = "outerHTML"
        return response
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect("dashboard:saga", saga_id=saga_id)
