"""Batch repairs in the dashboard: confirm one action on every saga a list's filter matches,
then follow its progress (a fragment htmx polls, so a reload finds it where it is), its per-saga
results, and cancel it.

The confirmation is a form posted twice: "Preview" shows how many sagas match, each plan with its
count and who would be refused and why; "Start" (offered once the same choices were previewed)
makes the batch through bpm.batches, which the workers then run.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from bpm import batches, permissions
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.fragment import render_page, wants_fragment
from bpm.dashboard.saga_actions import JSONObjectField
from bpm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from bpm.models import Batch, BatchAction, BatchItemStatus

RESULTS_PER_PAGE = 100
ACTION_HELP = {
    BatchAction.RETRY: "Redrive each saga from its failed step, optionally patching its input.",
    BatchAction.SKIP: "Mark each saga's failed step done by hand, recording the output below.",
    BatchAction.COMPENSATE: "Undo each saga's finished steps, newest first (before the pivot).",
    BatchAction.ABORT: "Close each saga as resolved by hand: nothing more runs.",
    BatchAction.MIGRATE: "Move each RUNNING or STUCK saga to the target version of its"
    " definition, when the steps it ran map onto it (a stuck one stays stuck: retry it then).",
}


class BatchForm(forms.Form):
    filter = forms.CharField(required=False, widget=forms.HiddenInput)
    action = forms.ChoiceField(choices=BatchAction.choices, widget=forms.RadioSelect)
    patch = JSONObjectField(
        required=False,
        label="Patch to the input (retry)",
        help_text="A JSON merge patch (RFC 7386) applied to each saga's input and checked against"
        ' its schema: {"email": "new@example.com"} sets a member, null removes one.',
    )
    output = JSONObjectField(
        required=False,
        label="Output to record (skip)",
        help_text="The output recorded for each skipped step; empty records {}.",
    )
    target_version = forms.CharField(
        required=False,
        max_length=12,
        label="Target version (migrate)",
        help_text="The version of the filtered definition to move the sagas to; it must be"
        " published. Filter the list by the definition (and its current version) first.",
    )
    reason = forms.CharField(
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why: recorded in every saga's timeline with your name and the batch.",
    )
    previewed = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action")
        if data.get("patch") is not None and action != BatchAction.RETRY:
            self.add_error("patch", "Only a retry takes a patch; clear it or choose retry.")
        if data.get("output") is not None and action != BatchAction.SKIP:
            self.add_error("output", "Only a skip records an output; clear it or choose skip.")
        if data.get("target_version") and action != BatchAction.MIGRATE:
            self.add_error(
                "target_version",
                "Only a migrate takes a target version; clear it or choose migrate.",
            )
        return data

    def arguments(self) -> dict[str, Any]:
        """Return bpm.batches' keyword arguments (the reason apart)."""
        data = self.cleaned_data
        return {
            "query": QueryDict(data["filter"]),
            "action": data["action"],
            "patch": data.get("patch"),
            "output": data.get("output"),
            "target_version": data.get("target_version") or None,
        }

    def fingerprint(self) -> str:
        """Return a digest of what was previewed: starting needs the same choices."""
        data = self.cleaned_data
        chosen = [
            data["filter"],
            data["action"],
            data.get("patch"),
            data.get("output"),
            data.get("target_version") or None,
        ]
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:32]


def _may_repair(user: Any) -> bool:
    return any(permissions.may(user, action) for action in batches.ACTIONS)


@dashboard_view
@require_http_methods(["GET", "POST"])
def batch_new(request: HttpRequest) -> HttpResponse:
    """Confirm a batch repair of the sagas the query string's filter selects (GET: the form)."""
    if not _may_repair(request.user):
        raise HttpForbidden(
            f"{request.user.get_username()} may not repair sagas: that needs the operators group."
        )
    if request.method == "GET":
        query = request.GET.copy()
        action = query.pop("action", [BatchAction.RETRY])[-1]
        target_version = query.pop("target_version", [""])[-1]
        for name in batches.PAGING:
            query.pop(name, None)
        form = BatchForm(
            initial={
                "filter": query.urlencode(),
                "action": action,
                "target_version": target_version,
            }
        )
        return _confirmation(request, form, query.urlencode(), preview=None)
    form = BatchForm(request.POST)
    filter_query = request.POST.get("filter", "")
    if not form.is_valid():
        return _confirmation(request, form, filter_query, preview=None, status=400)
    try:
        if "start" in request.POST and form.cleaned_data["previewed"] == form.fingerprint():
            if not form.cleaned_data["reason"].strip():
                form.add_error("reason", "A reason is required.")
            else:
                batch = batches.batch_create(
                    **form.arguments(), reason=form.cleaned_data["reason"], user=request.user
                )
                return redirect("dashboard:batch", batch_id=batch.pk)
        preview = batches.batch_preview(**form.arguments(), user=request.user)
    except batches.InvalidFilter as exc:
        return _confirmation(request, form, filter_query, None, status=400, filter_errors=exc)
    except InvalidInput as exc:
        form.add_error(exc.path if exc.path in form.fields else None, str(exc))
        return _confirmation(request, form, filter_query, preview=None, status=400)
    except PermissionDenied as exc:
        form.add_error("action", str(exc))
        return _confirmation(request, form, filter_query, preview=None, status=403)
    if form.errors:
        return _confirmation(request, form, filter_query, preview, status=400)
    data = request.POST.copy()
    data["previewed"] = form.fingerprint()
    return _confirmation(request, BatchForm(data), filter_query, preview)


def _confirmation(
    request: HttpRequest,
    form: BatchForm,
    filter_query: str,
    preview: batches.Preview | None,
    status: int = 200,
    filter_errors: batches.InvalidFilter | None = None,
) -> HttpResponse:
    filters = [(name, value) for name, value in QueryDict(filter_query).lists()]
    context = page_context(
        request,
        "Repair every matching saga",
        tab="sagas",
        form=form,
        filter_query=filter_query,
        filters=filters,
        filter_errors=filter_errors.fields if filter_errors else None,
        preview=preview,
        action_help=ACTION_HELP,
    )
    return render(request, "dashboard/batch_new.html", context, status=status)


def _batch(batch_id: int) -> Batch:
    try:
        return batches.batch_get(batch_id)
    except NotFound as exc:
        raise Http404(str(exc)) from None


@dashboard_view
def batch_page(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Show a batch's progress (polled while it runs) and its per-saga results."""
    batch = _batch(batch_id)
    shown = request.GET.get("status", "")
    items = batch.items.order_by("id")
    if shown in BatchItemStatus.values:
        items = items.filter(status=shown)
    page = Paginator(items, RESULTS_PER_PAGE).get_page(request.GET.get("page"))
    context = page_context(
        request,
        f"Batch {batch.pk}",
        tab="sagas",
        batch=batch,
        page=page,
        shown=shown,
        statuses=BatchItemStatus.values,
        may_cancel=batch.is_open and permissions.may(request.user, batch.action),
    )
    return render_page(request, "dashboard/batch.html", "dashboard/_batch_progress.html", context)


@dashboard_view
@require_POST
def batch_cancel(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Cancel a batch before its next saga."""
    batch = _batch(batch_id)
    try:
        batches.batch_cancel(batch_id=batch.pk, user=request.user)
    except PermissionDenied as exc:
        raise HttpForbidden(str(exc)) from None
    except Conflict as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain")
    if wants_fragment(request):
        return batch_page(request, batch.pk)
    return redirect("dashboard:batch", batch_id=batch.pk)


@dashboard_view
def batch_list(request: HttpRequest) -> HttpResponse:
    """List the batch repairs, newest first."""
    page = Paginator(Batch.objects.select_related("created_by"), 50).get_page(
        request.GET.get("page")
    )
    context = page_context(request, "Batch repairs", tab="sagas", page=page)
    return render(request, "dashboard/batches.html", context)
