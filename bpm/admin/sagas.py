"""Saga instances in the admin: read-only rows with their step runs and timeline, and the
operator actions (retry, compensate, abort) on selected sagas."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from bpm import permissions, services
from bpm.admin import actions
from bpm.admin.display import folded, moment, pretty_json, short_id, shown
from bpm.admin.paging import CappedPaginator
from bpm.admin.readonly import ReadOnlyAdmin, ReadOnlyInline
from bpm.dashboard import saga_search
from bpm.dashboard.saga_filter import SearchInvalid, search
from bpm.models import SagaDefinition, SagaEvent, SagaInstance, SagaStatus, StepRun

# The cause columns, shown when the changelist lists stuck (or aborted) sagas.
CAUSE_COLUMNS = ("stuck_step", "last_error", "stuck_attempts")


class StepRunInline(ReadOnlyInline):
    model = StepRun
    verbose_name = "step run"
    fields = (
        "step_name",
        "direction",
        "status",
        "attempts",
        "due",
        "finished",
        "failure_kind",
        "error",
    )
    readonly_fields = fields
    ordering = ("id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[StepRun]:
        return super().get_queryset(request).select_related("step")

    @admin.display(description="step")
    def step_name(self, run: StepRun) -> str:
        return f"{run.step.position}. {run.step.name}"

    due = shown("due_at", moment, "due at")
    finished = shown("finished_at", moment, "finished at")
    error = shown("last_error", folded, "last error")


class SagaEventInline(ReadOnlyInline):
    model = SagaEvent
    verbose_name = "event"
    verbose_name_plural = "timeline"
    fields = ("when", "type", "actor", "step", "attempt", "details")
    readonly_fields = fields
    ordering = ("at", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SagaEvent]:
        return super().get_queryset(request).select_related("step_run__step")

    when = shown("at", moment, "at")

    @admin.display(description="step")
    def step(self, event: SagaEvent) -> str:
        if event.step_run is None:
            return "-"
        return f"{event.step_run.step.name} ({event.step_run.direction.lower()})"

    @admin.display(description="message")
    def details(self, event: SagaEvent) -> SafeString | str:
        data = event.data or {}
        return folded(event.message, str(data.get("traceback") or ""))


class DefinitionNameFilter(admin.SimpleListFilter):
    """Filter by definition name, listing names from the small definitions table."""

    title = "definition"
    parameter_name = "definition_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = SagaDefinition.objects.order_by("name").values_list("name", flat=True).distinct()
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(definition_name=self.value())
        return queryset


@admin.register(SagaInstance)
class SagaInstanceAdmin(ReadOnlyAdmin):
    """Sagas are read here and repaired through actions; nobody edits or deletes one by hand."""

    list_display = (
        "short_id",
        "definition_version",
        "status",
        "stuck_reason",
        "business_key",
        "created_at",
        "updated_at",
    )
    list_display_links = ("short_id",)
    list_filter = ("status", DefinitionNameFilter, "stuck_reason", "created_at")
    list_select_related = ("definition",)
    search_fields = ("=id", "=business_key", "=idempotency_key")
    search_help_text = saga_search.HELP
    ordering = ("-created_at",)
    # Counting every saga, for "N total" or per filter choice, is a full scan on a big table;
    # the paginator counts a view up to a limit and pages no deeper (OFFSET grows with depth).
    show_full_result_count = False
    paginator = CappedPaginator
    show_facets = admin.ShowFacets.NEVER
    actions = ("retry", "compensate", "abort", "skip", "edit", "pause", "resume")
    inlines = (StepRunInline, SagaEventInline)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "definition",
                    "status",
                    "stuck_reason",
                    "stuck_direction",
                    "stuck_step",
                    "stuck_error_code",
                    "stuck_error",
                    "stuck_attempts",
                    "business_key",
                    "idempotency_key",
                )
            },
        ),
        ("Data", {"fields": ("input_json", "context_json", "failure_json")}),
        ("Times", {"fields": ("created", "updated", "finished", "deadline_at")}),
    )
    readonly_fields = (
        "input_json",
        "context_json",
        "failure_json",
        "created",
        "updated",
        "finished",
        "deadline_at",
    )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.RETRY)

    def has_compensate_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.COMPENSATE)

    def has_abort_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.ABORT)

    def has_skip_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.SKIP)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SagaInstance], search_term: str
    ) -> tuple[QuerySet[SagaInstance], bool]:
        # The dashboard's search (bpm.dashboard.saga_search), so both find the same sagas.
        if not search_term.strip().rstrip("…").strip():
            return queryset, False
        try:
            return queryset.filter(search(search_term)), False
        except SearchInvalid as error:
            messages.error(request, f"Nothing was searched: {error}")
            return queryset.none(), False

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        shown = list(super().get_list_display(request))
        stuck = request.GET.get("status__exact") in (SagaStatus.STUCK, SagaStatus.ABORTED)
        if stuck or request.GET.get("stuck_reason__exact"):
            return [*shown, *CAUSE_COLUMNS]
        return shown

    @admin.display(description="last error", ordering="stuck_error_code")
    def last_error(self, saga: SagaInstance) -> str:
        message = Truncator(saga.stuck_error).chars(120)
        return f"{saga.stuck_error_code}: {message}" if saga.stuck_error_code else message

    @admin.display(description="saga", ordering="id")
    def short_id(self, saga: SagaInstance) -> str:
        return short_id(saga.id)

    @admin.display(description="definition", ordering="definition_name")
    def definition_version(self, saga: SagaInstance) -> str:
        return str(saga.definition)

    created = shown("created_at", moment, "created at")
    updated = shown("updated_at", moment, "updated at")
    finished = shown("finished_at", moment, "finished at")
    deadline_at = shown("deadline", moment, "deadline")
    input_json = shown("input", pretty_json, "input")
    context_json = shown("context", pretty_json, "context (outputs by step)")
    failure_json = shown("failure", pretty_json, "failure")

    @admin.action(description="Retry the selected stuck sagas…", permissions=[permissions.RETRY])
    def retry(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> HttpResponse | None:
        return actions.confirm_and_apply(self, request, queryset, permissions.RETRY)

    @admin.action(
        description="Compensate the selected stuck sagas…", permissions=[permissions.COMPENSATE]
    )
    def compensate(
        self, request: HttpRequest, queryset: QuerySet[SagaInstance]
    ) -> HttpResponse | None:
        return actions.confirm_and_apply(self, request, queryset, permissions.COMPENSATE)

    @admin.action(description="Abort the selected stuck sagas…", permissions=[permissions.ABORT])
    def abort(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> HttpResponse | None:
        return actions.confirm_and_apply(self, request, queryset, permissions.ABORT)

    @admin.action(
        description="Skip the failed step of the selected stuck sagas…",
        permissions=[permissions.SKIP],
    )
    def skip(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> HttpResponse | None:
        return actions.confirm_and_apply(self, request, queryset, permissions.SKIP)

    @admin.action(
        description="Retry the selected stuck sagas with edited input…",
        permissions=[permissions.RETRY],
    )
    def edit(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> HttpResponse | None:
        return actions.confirm_and_apply(self, request, queryset, actions.EDIT)

    # Pausing holds a saga and resuming lets it go on: both need the retry permission.
    @admin.action(description="Pause the selected sagas…", permissions=[permissions.RETRY])
    def pause(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> HttpResponse | None:
        return actions.confirm_and_apply(self, request, queryset, services.PAUSE)

    @admin.action(description="Resume the selected paused sagas…", permissions=[permissions.RETRY])
    def resume(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> HttpResponse | None:
        return actions.confirm_and_apply(self, request, queryset, services.RESUME)
