"""The saga list: filters, search, sorting and keyset pages, refreshed in place by htmx."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from bpm import clock
from bpm.dashboard import keyset
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.fragment import render_page
from bpm.dashboard.saga_filter import SagaFilter
from bpm.models import SagaDefinition


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
        now=clock.now(),
    )
    return render_page(request, "dashboard/sagas.html", "dashboard/sagas_results.html", context)
