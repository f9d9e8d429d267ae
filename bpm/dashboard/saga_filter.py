"""The saga list's query string: a form that validates it, and the sagas it selects."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.http import QueryDict

from bpm.dashboard import keyset, saga_search
from bpm.dashboard.saga_search import SearchInvalid, search
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
# The value of `step` or `error` that selects sagas with none (a stuck saga with no error code).
NONE = "-"
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
        max_length=saga_search.MAX_LENGTH,
        help_text=saga_search.HELP,
        widget=forms.TextInput(attrs={"placeholder": saga_search.PLACEHOLDER, "type": "search"}),
    )
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *SagaStatus.choices])
    definition = forms.ChoiceField(required=False)
    version = forms.IntegerField(required=False, min_value=1)
    reason = forms.ChoiceField(
        label="Stuck reason", required=False, choices=[("", "any reason"), *StuckReason.choices]
    )
    step = forms.CharField(
        label="Failing step",
        required=False,
        max_length=100,
        help_text=f"the step a stuck saga failed on; {NONE} for none",
    )
    error = forms.CharField(
        label="Error code",
        required=False,
        max_length=100,
        help_text=f"its error code or exception type; {NONE} for none",
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

    def clean_q(self) -> str:
        text: str = self.cleaned_data["q"]
        try:
            search(text)
        except SearchInvalid as error:
            raise forms.ValidationError(str(error)) from None
        return text

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
            "stuck_step": data["step"],
            "stuck_error_code": data["error"],
            "created_at__gte": data["created_from"],
            "created_at__lt": data["created_to"],
        }
        rows = rows.filter(
            **{key: "" if value == NONE else value for key, value in exact.items() if value}
        )
        if data.get("assignee") == "mine":
            rows = rows.filter(assignee_id=getattr(self.user, "pk", None) or 0)
        elif data.get("assignee") == "unassigned":
            rows = rows.filter(assignee__isnull=True)
        if data["q"]:
            rows = rows.filter(search(data["q"]))
        return rows
