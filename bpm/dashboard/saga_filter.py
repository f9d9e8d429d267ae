"""The saga list's query string: a form that validates it, and the sagas it selects."""

from __future__ import annotations

import string
import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import QueryDict

from bpm.dashboard import keyset
from bpm.models import SagaDefinition, SagaInstance, SagaStatus, StuckReason

# The orderings an operator can pick; the last field of each is unique, as keyset paging needs.
ORDERINGS = {
    name: keyset.Ordering(name=name, fields=fields, descending=name.startswith("-"))
    for name, fields in [
        ("-created", ("created_at", "id")),
        ("created", ("created_at", "id")),
        ("-updated", ("updated_at", "id")),
        ("updated", ("updated_at", "id")),
        ("status", ("status", "created_at", "id")),
        ("-status", ("status", "created_at", "id")),
    ]
}
SORT_LABELS = {
    "-created": "newest first",
    "created": "oldest first",
    "-updated": "recently changed first",
    "updated": "longest unchanged first",
    "status": "status A→Z",
    "-status": "status Z→A",
}
DEFAULT_SORT = "-created"
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 50
# What a datetime-local input sends: minutes, or seconds when the browser adds them.
LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class SagaFilter(forms.Form):
    """Validates the saga list's filters, search, sort, page size and cursor."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        help_text="A saga id or its first characters, a business key or an idempotency key.",
    )
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *SagaStatus.choices])
    definition = forms.ChoiceField(required=False)
    version = forms.IntegerField(required=False, min_value=1)
    reason = forms.ChoiceField(
        label="Stuck reason", required=False, choices=[("", "any reason"), *StuckReason.choices]
    )
    assignee = forms.ChoiceField(
        label="Assigned",
        required=False,
        choices=[("", "to anyone or no one"), ("mine", "to me"), ("unassigned", "to no one")],
    )
    created_from = forms.DateTimeField(
        label="Created from",
        required=False,
        input_formats=LOCAL_FORMATS,
        widget=LocalDateTimeInput(),
    )
    created_to = forms.DateTimeField(
        label="Created to", required=False, input_formats=LOCAL_FORMATS, widget=LocalDateTimeInput()
    )
    sort = forms.ChoiceField(required=False, choices=list(SORT_LABELS.items()))
    size = forms.TypedChoiceField(
        label="Per page",
        required=False,
        coerce=int,
        choices=[(size, str(size)) for size in PAGE_SIZES],
    )
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data: QueryDict, *, definitions: list[str], user: Any = None) -> None:
        self.user = user
        # Filled in so the form shows the page size and sort in use, not its first choices.
        data = data.copy()
        data.setdefault("sort", DEFAULT_SORT)
        data.setdefault("size", str(DEFAULT_PAGE_SIZE))
        super().__init__(data)
        self.fields["definition"].choices = [("", "any definition")] + [  # type: ignore[attr-defined]
            (name, name) for name in definitions
        ]
        zone = settings.TIME_ZONE
        self.fields["created_from"].help_text = f"{zone}, inclusive"
        self.fields["created_to"].help_text = f"{zone}, exclusive"

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or DEFAULT_SORT

    def clean_size(self) -> int:
        return self.cleaned_data["size"] or DEFAULT_PAGE_SIZE

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self._check_version(data)
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start >= end:
            self.add_error("created_to", "Must be later than “created from”.")
        data["cursor"] = self._cursor(data.get("cursor") or "")
        return data

    def _cursor(self, token: str) -> keyset.Cursor | None:
        if not token or self.has_error("sort"):
            return None
        try:
            return keyset.decode(token, self.ordering, SagaInstance)
        except keyset.CursorInvalid as error:
            self.add_error("cursor", f"This page link cannot be followed: {error}.")
            return None

    def _check_version(self, data: dict[str, Any]) -> None:
        version, name = data.get("version"), data.get("definition")
        if version is None:
            return
        if not name:
            self.add_error("version", "Choose a definition to filter by its version.")
            return
        definition_id = (
            SagaDefinition.objects.filter(name=name, version=version)
            .values_list("id", flat=True)
            .first()
        )
        if definition_id is None:
            self.add_error("version", f"{name} has no version {version}.")
        data["definition_id"] = definition_id

    @property
    def ordering(self) -> keyset.Ordering:
        return ORDERINGS[self.cleaned_data.get("sort") or DEFAULT_SORT]

    def sagas(self) -> QuerySet[SagaInstance]:
        """Return the sagas the valid filters select, unordered (the paginator orders them)."""
        data = self.cleaned_data
        rows = SagaInstance.objects.select_related("definition", "assignee")
        version = data.get("definition_id")
        exact = {
            "status": data["status"],
            # A version implies its name. Filtering on both would let the planner walk the
            # name's index past every newer version's sagas; the version's own index has only
            # its sagas (saga_version_created).
            "definition_name": None if version else data["definition"],
            "definition_id": version,
            "stuck_reason": data["reason"],
            "created_at__gte": data["created_from"],
            "created_at__lt": data["created_to"],
        }
        rows = rows.filter(**{key: value for key, value in exact.items() if value})
        if data.get("assignee") == "mine":
            rows = rows.filter(assignee_id=getattr(self.user, "pk", None) or 0)
        elif data.get("assignee") == "unassigned":
            rows = rows.filter(assignee__isnull=True)
        if data["q"]:
            rows = rows.filter(search(data["q"]))
        return rows


def search(text: str) -> Q:
    """Return the sagas whose id starts with `text` or whose business or idempotency key is it.

    The admin's changelist searches with this too, so both find the same sagas: an order id is
    the business key of its place_order saga. A short id quoted with its ellipsis
    ("1a2b3c4d…", as messages show it) is taken as the prefix it stands for.
    """
    text = text.strip().rstrip("…").strip()
    if not text:
        # Nothing left to look for; an empty key would match every saga without one.
        return Q(pk__in=[])
    match = Q(business_key=text) | Q(idempotency_key=text)
    digits = text.replace("-", "").lower()
    if digits and len(digits) <= 32 and all(c in string.hexdigits for c in digits):
        # A prefix of the id is the range from prefix-000… to prefix-fff…: a scan of the primary
        # key, which both PostgreSQL (uuid) and SQLite (hex text) order the same way.
        low, high = uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
        match |= Q(id__gte=low, id__lte=high)
    return match
