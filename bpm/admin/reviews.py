"""Reviewing a draft version in the admin: a page showing its changes and asking for a comment,
then the approval or rejection applied through bpm.drafts (four eyes, audited)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from bpm import drafts, permissions
from bpm.errors import SagaError
from bpm.models import SagaDefinition

APPROVE = "approve"
REJECT = "reject"


@dataclass(frozen=True)
class Review:
    verb: str
    title: str
    label: str
    help_text: str
    done: str
    apply: Callable[[SagaDefinition, Any, str], SagaDefinition]


REVIEWS = {
    APPROVE: Review(
        APPROVE,
        "Approve and publish",
        "Comment",
        "What you checked. Recorded with your name; new sagas then start on this version.",
        "approved and published: new sagas start on it",
        lambda draft, user, text: drafts.definition_approve(
            definition_id=draft.pk, user=user, comment=text
        ),
    ),
    REJECT: Review(
        REJECT,
        "Reject",
        "Reason",
        "Why this draft must not go live. Recorded with your name; the draft never starts a saga.",
        "rejected: it will never start a saga",
        lambda draft, user, text: drafts.definition_reject(
            definition_id=draft.pk, user=user, reason=text
        ),
    ),
}


class ReviewForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        strip=True,
    )

    def __init__(self, review: Review, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["text"]
        field.label = review.label
        field.help_text = review.help_text
        field.error_messages["required"] = f"A {review.label.lower()} is required."


def review(model_admin: Any, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
    """Show a draft's changes with a comment box (GET), or approve or reject it (POST)."""
    draft = model_admin.get_object(request, unquote(object_id))
    if draft is None:
        raise Http404(f"no saga definition version with id {object_id!r}")
    if not permissions.may(request.user, permissions.COMPOSE):
        raise PermissionDenied(permissions.refusal(request.user, permissions.COMPOSE))
    page = reverse("admin:bpm_sagadefinition_change", args=[draft.pk])
    if not draft.is_draft:
        messages.error(request, f"{draft} is {draft.status}, not a draft: nothing to review.")
        return HttpResponseRedirect(page)
    refusal = drafts.approval_refusal(draft, request.user) if verb == APPROVE else ""
    if refusal:
        raise PermissionDenied(refusal)
    chosen = REVIEWS[verb]
    form = ReviewForm(chosen, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            chosen.apply(draft, request.user, form.cleaned_data["text"])
        except SagaError as exc:
            messages.error(request, f"{draft} was not {verb}ed: {exc}")
            return HttpResponseRedirect(page)
        model_admin.log_change(request, draft, f"{chosen.done}: {form.cleaned_data['text']}")
        messages.success(request, f"{draft} {chosen.done}.")
        return HttpResponseRedirect(page)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"{chosen.title} {draft}",
        "draft": draft,
        "review": chosen,
        "form": form,
        "changes": render_changes(draft),
    }
    return TemplateResponse(request, "admin/bpm/sagadefinition/review.html", context)


def review_context(request: HttpRequest, definition: SagaDefinition) -> dict[str, Any]:
    """Return what a version's page needs to offer the review buttons, or why it does not."""
    may_review = definition.is_draft and permissions.may(request.user, permissions.COMPOSE)
    return {
        "may_review": may_review,
        "approval_refusal": drafts.approval_refusal(definition, request.user) if may_review else "",
    }


def render_changes(definition: SagaDefinition) -> SafeString:
    """Return the HTML table of what a version changes against the published one."""
    html = render_to_string(
        "dashboard/_definition_changes.html", {"diff": drafts.changes_of(definition)}
    )
    # A template rendered it, escaping every value.
    return mark_safe(html)
