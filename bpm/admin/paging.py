"""A changelist paginator whose count and deepest page do not grow with the table."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# The admin counts and pages through at most this many rows of a view; past it, a filter or the
# search narrows the view (the dashboard's saga list pages by keyset, at any depth).
COUNT_LIMIT = 10_000


class CappedPaginator(Paginator):
    """Counts up to COUNT_LIMIT rows (one bounded query) and offers the pages that hold them."""

    @cached_property
    def found(self) -> int:
        """Return how many rows match, counting one past the limit at most."""
        rows: Any = self.object_list  # a queryset: counting a slice counts at most that many
        return int(rows[: COUNT_LIMIT + 1].count())

    @cached_property
    def count(self) -> int:
        return min(self.found, COUNT_LIMIT)

    @property
    def capped(self) -> bool:
        """Return whether more rows match than were counted."""
        return self.found > COUNT_LIMIT

    @property
    def label(self) -> str:
        """Return the count as the changelist shows it: "10,000+" when capped."""
        return f"{self.count:,}+" if self.capped else f"{self.count:,}"
