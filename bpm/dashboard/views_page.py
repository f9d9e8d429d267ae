"""Saved views of the saga list: the page that lists them, saves one and deletes one's own."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from bpm.dashboard import saved_views
from bpm.dashboard.access import dashboard_view, page_context, refused
from bpm.errors import InvalidInput, NotFound, PermissionDenied


@dashboard_view
@require_http_methods(["GET", "POST"])
def saved_view_list(request: HttpRequest) -> HttpResponse:
    """List the views the user sees with their counts; a POST saves the query string as one."""
    error, status = "", 200
    if request.method == "POST":
        try:
            view = saved_views.saved_view_create(
                user=request.user,
                name=request.POST.get("name", ""),
                query=request.POST.get("query", ""),
                shared=request.POST.get("shared") == "on",
            )
        except PermissionDenied as refusal:
            return refused(request, str(refusal), back=reverse("dashboard:sagas"))
        except InvalidInput as invalid:
            error, status = str(invalid), 400
        else:
            messages.success(request, f"The view “{view.name}” was saved.")
            return HttpResponseRedirect(f"{reverse('dashboard:sagas')}?{view.query}")
    context = page_context(
        request,
        "Saved views",
        tab="sagas",
        saved_views=saved_views.counted(request.user),
        save_error=error,
        save_name=request.POST.get("name", ""),
        save_query=request.POST.get("query", ""),
        may_share=saved_views.may_share(request.user),
    )
    return render(request, "dashboard/saved_views.html", context, status=status)


@dashboard_view
@require_POST
def saved_view_delete(request: HttpRequest, view_id: int) -> HttpResponse:
    """Delete one of the user's own views."""
    try:
        view = saved_views.saved_view_delete(user=request.user, view_id=view_id)
    except NotFound:
        raise Http404("no such saved view") from None
    except PermissionDenied as error:
        return refused(request, str(error), back=reverse("dashboard:saved_views"))
    messages.success(request, f"The view “{view.name}” was deleted.")
    return HttpResponseRedirect(reverse("dashboard:saved_views"))
