"""Saved views of the saga list: named query strings, a user's own or shared, with live counts.

The query string is validated by the saga list's own form (bpm.dashboard.saga_filter.SagaFilter)
when saved and again whenever it is counted: a view that no longer validates (its definition
version gone, say) shows why, not a count. Counts stop at COUNT_LIMIT so that a view matching a
million sagas costs what one matching a thousand does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.http import QueryDict

from bpm.dashboard.saga_filter import SagaFilter
from bpm.errors import InvalidInput, NotFound, PermissionDenied
from bpm.models import SagaDefinition, SavedView

COUNT_LIMIT = 1000
# Not part of what a view selects: the page it was on.
DROPPED = ("cursor",)
SHARE_PERMISSION = "bpm.share_savedview"
MAX_QUERY = 2000


@dataclass(frozen=True)
class CountedView:
    view: SavedView
    count: int | None
    capped: bool
    error: str

    @property
    def shown(self) -> str:
        if self.count is None:
            return "—"
        return f"{COUNT_LIMIT}+" if self.capped else str(self.count)


def may_share(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(SHARE_PERMISSION))


def _names() -> list[str]:
    return list(SagaDefinition.objects.order_by("name").values_list("name", flat=True).distinct())


def _filter(query: str, names: list[str] | None = None, user: Any = None) -> SagaFilter:
    return SagaFilter(
        QueryDict(query), definitions=_names() if names is None else names, user=user
    )


def problems(form: SagaFilter) -> str:
    """Return the filter's errors as one sentence (empty when it is valid)."""
    found = []
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else None
        for error in errors:
            found.append(f"{label or field}: {error}" if field != "__all__" else str(error))
    return " ".join(found)


def normalize(query: str) -> str:
    """Return the query string without the page it was on, without a leading "?"."""
    data = QueryDict(query.lstrip("?"), mutable=True)
    for key in DROPPED:
        data.pop(key, None)
    return data.urlencode()


def saved_view_create(*, user: Any, name: str, query: str, shared: bool) -> SavedView:
    """Save a view of the saga list for `user`; shared views need the share permission."""
    name = name.strip()
    if not name:
        raise InvalidInput("Name the view.", path="name")
    if len(name) > 100:
        raise InvalidInput("A view's name has at most 100 characters.", path="name")
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"The filter is longer than {MAX_QUERY} characters.", path="query")
    query = normalize(query)
    if shared and not may_share(user):
        raise PermissionDenied(
            f"{user.get_username()} may not share views: that needs the {SHARE_PERMISSION} "
            "permission, which the operators group has"
        )
    form = _filter(query, user=user)
    if not form.is_valid():
        raise InvalidInput(f"This filter cannot be saved: {problems(form)}", path="query")
    if SavedView.objects.filter(owner=user, name=name).exists():
        raise InvalidInput(f"You already have a view named “{name}”.", path="name")
    return SavedView.objects.create(owner=user, name=name, query=query, shared=shared)


def saved_view_delete(*, user: Any, view_id: int) -> SavedView:
    """Delete one of `user`'s own views; another's shared view is refused, a private one unseen."""
    view = visible(user).filter(pk=view_id).first()
    if view is None:
        raise NotFound(f"no saved view {view_id}")
    if view.owner_id != user.pk:
        raise PermissionDenied(f"“{view.name}” is {view.owner}'s view: only they may delete it")
    view.delete()
    return view


def visible(user: Any) -> Any:
    """Return the views `user` sees: their own and every shared one."""
    return SavedView.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner")


def counted(user: Any) -> list[CountedView]:
    """Return the views `user` sees, each with its live count or why it cannot be counted."""
    views = list(visible(user).order_by("-shared", "name", "id"))
    names = _names() if views else []
    return [count(view, names, user) for view in views]


def count(view: SavedView, names: list[str] | None = None, user: Any = None) -> CountedView:
    """Return the view with how many sagas it selects now (at most COUNT_LIMIT, then "1000+");
    "assigned to me" counts the sagas assigned to `user`."""
    form = _filter(view.query, names, user)
    if not form.is_valid():
        return CountedView(view, None, False, problems(form))
    number = form.sagas().order_by()[: COUNT_LIMIT + 1].count()
    return CountedView(view, min(number, COUNT_LIMIT), number > COUNT_LIMIT, "")
