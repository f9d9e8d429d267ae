"""The saga list: filters, search, sorting and keyset pages, refreshed in place by htmx."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from bpm import clock
from bpm.dashboard import keyset, saved_views
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.fragment import render_page
from bpm.dashboard.saga_filter import SagaFilter
from bpm.models import SagaDefinition, SagaStatus

# A list of these statuses, or filtered by a cause, shows the cause columns.
CAUSE_STATUSES = (SagaStatus.STUCK, SagaStatus.ABORTED)


@dashboard_view
def saga_list(request: HttpRequest) -> HttpResponse:
    """Render the sagas the query string selects, one page; errors in it are shown, not raised."""
    names = list(SagaDefinition.objects.order_by("name").values_list("name", flat=True).distinct())
    form = SagaFilter(request.GET, definitions=names, user=request.user)
    page = None
    if form.is_valid():
        data = form.cleaned_data
        page = keyset.paginate(form.sagas(), form.ordering, data["cursor"], data["size"])
    context = page_context(
        request,
        "Sagas",
        tab="sagas",
        form=form,
        page=page,
        sort=form.cleaned_data.get("sort", ""),
        show_cause=_lists_stuck(form),
        now=clock.now(),
        saved_views=saved_views.counted(request.user),
        save_query=saved_views.normalize(request.GET.urlencode()),
        may_share=saved_views.may_share(request.user),
    )
    return render_page(request, "dashboard/sagas.html", "dashboard/sagas_results.html", context)


def _lists_stuck(form: SagaFilter) -> bool:
    """Return whether the list shows stuck (or aborted) sagas, whose cause gets columns."""
    data = form.cleaned_data
    return data.get("status") in CAUSE_STATUSES or any(
        data.get(name) for name in ("reason", "step", "error")
    )
