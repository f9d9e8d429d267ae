"""Saga definitions in the admin: versions are read-only; a designer composes a new version from
registered handlers, validated as a code declaration's sync would be, and it waits as a draft
until a second designer approves it (bpm/admin/reviews.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from bpm import definitions, drafts, http_calls, permissions, registry, schemas, waits
from bpm.admin import reviews
from bpm.admin.display import pretty_json, shown
from bpm.admin.readonly import ReadOnlyInline
from bpm.admin.saved import adopt
from bpm.dashboard.diagram import render_diagram
from bpm.declarations import RetryPolicy, SagaDeclaration, StepDeclaration, validate_steps
from bpm.errors import DefinitionInvalid
from bpm.models import DefinitionEvent, SagaDefinition, SagaInstance, StepDefinition

# A step's float fields, given narrow inputs so a step fits on one row.
SECONDS_AND_FACTORS = ("initial_backoff", "backoff_multiplier", "max_backoff", "jitter", "timeout")
HTTP_FIELDS = ("action_http", "compensation_http")
HTTP_HELP = (
    'instead of a handler: {"method": "POST", "url": "https://host/path/{input.id}", "body":'
    ' {"id": {"$ref": "/input/id"}}, "headers": {"Authorization": {"secret": "NAME",'
    ' "prefix": "Bearer "}}} (docs/processes.md)'
)
WAIT_HELP = (
    'a wait step\'s wait: {"signal": "name", "timeout": 3600}, {"task_token": {}, "timeout": 600}'
    ' or {"task": {"group": "...", "title": "...", "form": {…}}, "timeout": 86400}; signal and'
    " task waits have no action (docs/processes.md)"
)
# Blank step rows offered on a new version's form (the admin's "Add another" makes more).
BLANK_STEPS = 3


def _handler_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in registry.handler_names()]


def _action_choices() -> list[tuple[str, str]]:
    # A blank first choice, so a blank step row is left unchanged and ignored.
    return [("", "— choose a handler —"), *_handler_choices()]


def _compensation_choices() -> list[tuple[str, str]]:
    return [("", "— none —"), *_handler_choices()]


def _queue_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in settings.RQ_QUEUES]


class StepForm(forms.ModelForm):
    """One step of a new version; handler and queue names are chosen from what exists."""

    action = forms.ChoiceField(
        choices=_action_choices,
        required=False,
        error_messages={"invalid_choice": "no handler registered as %(value)r"},
    )
    compensation = forms.ChoiceField(
        choices=_compensation_choices,
        required=False,
        error_messages={"invalid_choice": "no handler registered as %(value)r"},
    )
    queue = forms.ChoiceField(
        choices=_queue_choices,
        initial="default",
        error_messages={"invalid_choice": "queue %(value)r is not configured (BPM_QUEUES)"},
    )
    # Names separated by commas; blank keeps the default order, "-" starts the step with the saga.
    after = forms.CharField(
        required=False,
        label="after",
        help_text=(
            "the steps this one waits for, separated by commas (they run in parallel);"
            " blank: the step above it; -: starts with the saga"
        ),
    )
    # A row copied from another version is left out of the new one by ticking this box.
    omit = forms.BooleanField(
        required=False, label="leave out", help_text="not part of the new version"
    )

    class Meta:
        model = StepDefinition
        fields = (
            "position",
            "name",
            "action",
            "compensation",
            "action_http",
            "compensation_http",
            "kind",
            "max_attempts",
            "initial_backoff",
            "backoff_multiplier",
            "max_backoff",
            "jitter",
            "timeout",
            "queue",
            "after",
            "wait",
        )
        help_texts = {
            "position": "order of the steps; renumbered 1, 2, 3… when saved",
            "action_http": HTTP_HELP,
            "compensation_http": "the same, to undo the action",
            "wait": WAIT_HELP,
        }
        labels = {"action_http": "or HTTP call", "compensation_http": "or HTTP compensation"}
        widgets = {
            **{
                field: forms.NumberInput(attrs={"class": "vIntegerField", "step": "any"})
                for field in SECONDS_AND_FACTORS
            },
            **{
                field: forms.Textarea(attrs={"rows": 4, "cols": 36, "spellcheck": "false"})
                for field in (*HTTP_FIELDS, "wait")
            },
        }

    def clean_after(self) -> list[str] | None:
        return after_names(self.cleaned_data.get("after") or "")

    def clean_wait(self) -> dict[str, Any]:
        wait = self.cleaned_data.get("wait")
        if wait in (None, "", {}):
            return {}
        problems = waits.wait_problems(wait)
        if problems:
            raise ValidationError(problems)
        return dict(wait or {})

    def has_changed(self) -> bool:
        # A row left out is treated as the blank rows are: not validated, not part of the version.
        if self["omit"].data:
            return False
        return super().has_changed()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name, field in (("action", "action_http"), ("compensation", "compensation_http")):
            call = data.get(field)
            if call in (None, "", {}):
                data[field] = None
                continue
            if data.get(name):
                self.add_error(field, f"choose a handler or write an HTTP call, not both ({name})")
                continue
            problems = http_calls.call_problems(call)
            if problems:
                self.add_error(field, problems)
        has_action = data.get("action") or data.get("action_http")
        if waits.runs_no_action(data.get("wait")):
            # A signal or a person finishes the step: there is nothing to run.
            if has_action and "action" not in self.errors:
                self.add_error("action", "a wait step has no action (it waits instead)")
        elif not has_action and "action" not in self.errors:
            self.add_error("action", "choose a handler or write an HTTP call")
        return data

    def declaration(self) -> StepDeclaration:
        """Return this row as the declaration the engine validates."""
        data = self.cleaned_data
        action, action_http = _action_of(data.get("action"), data.get("action_http"))
        compensation, compensation_http = _action_of(
            data.get("compensation"), data.get("compensation_http")
        )
        return StepDeclaration(
            name=data["name"],
            action=action,
            compensation=compensation,
            action_http=action_http,
            compensation_http=compensation_http,
            kind=data["kind"],
            retry=RetryPolicy(
                max_attempts=data["max_attempts"],
                initial_backoff=data["initial_backoff"],
                multiplier=data["backoff_multiplier"],
                max_backoff=data["max_backoff"],
                jitter=data["jitter"],
            ),
            timeout=data["timeout"],
            queue=data["queue"],
            after=data.get("after"),
            wait=data.get("wait") or {},
        )


def after_names(text: str) -> list[str] | None:
    """Return the composer's `after` text as step names: None when blank, [] for "-"."""
    text = text.strip()
    if not text:
        return None
    if text == "-":
        return []
    return [name.strip() for name in text.split(",") if name.strip()]


def after_text(after: Any) -> str:
    """Return a step's `after` as the composer shows it (the inverse of after_names)."""
    if after is None or isinstance(after, str):
        return after or ""
    return ", ".join(after) if after else "-"


def _action_of(name: str | None, call: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    return http_calls.step_action({"http": call} if call else name)


class StepFormSet(BaseInlineFormSet):
    """The steps of a new version, checked together by the engine's own validator."""

    def declared_steps(self) -> tuple[StepDeclaration, ...]:
        """Return the filled-in rows as declarations, ordered by position."""
        rows = [
            form
            for form in self.forms
            if form.has_changed() and form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        rows.sort(key=lambda form: form.cleaned_data["position"])
        return tuple(form.declaration() for form in rows)

    def clean(self) -> None:
        if any(self.errors):
            return
        steps = self.declared_steps()
        try:
            validate_steps(list(steps))
        except DefinitionInvalid as exc:
            raise ValidationError(str(exc)) from None
        super().clean()
        parent = self.instance
        current = definitions.published_version(parent.name) if parent.name else None
        if current is not None:
            composed = SagaDeclaration(
                name=parent.name,
                title=parent.title,
                steps=steps,
                input_schema=parent.input_schema,
            )
            if definitions.same_steps(current, composed):
                raise ValidationError(
                    f"these steps and input schema are those of {current}, the published"
                    " version: there is nothing new to publish"
                )


class StepInline(admin.TabularInline):
    model = StepDefinition
    verbose_name = "step"
    form = StepForm
    formset = StepFormSet
    ordering = ("position",)

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        if obj is not None:
            return 0
        source = _source_definition(request)
        return source.steps.count() if source is not None else BLANK_STEPS

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and may_compose(request)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if obj is not None:
            # A saved version is read-only: its order reads in words, not as stored JSON.
            fields = ["waits_for" if field == "after" else field for field in fields]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        return (*readonly, "waits_for") if obj is not None else readonly

    @admin.display(description="after")
    def waits_for(self, step: StepDefinition) -> str:
        if step.after is None:
            return "the step before" if (step.position or 0) > 1 else "starts with the saga"
        return ", ".join(step.after) if step.after else "starts with the saga"


class AuditInline(ReadOnlyInline):
    """Who composed, approved, rejected or deployed the version, when, and why."""

    model = DefinitionEvent
    verbose_name = "audit record"
    verbose_name_plural = "audit trail"
    fields = ("at", "type", "actor", "comment")
    readonly_fields = fields


def may_compose(request: HttpRequest) -> bool:
    """Return whether the user may compose versions (and review others' drafts)."""
    return permissions.may(request.user, permissions.COMPOSE)


class ComposeForm(forms.ModelForm):
    """A new version's name, title and input schema; its version number comes on saving."""

    class Meta:
        model = SagaDefinition
        fields = ("name", "title", "description", "input_schema", "change_reason")
        labels = {"change_reason": "Why this change"}
        help_texts = {
            "input_schema": "A JSON Schema for the saga's input (draft 2020-12); empty accepts any"
            " JSON object. It may reference only itself ($ref to #/... or #/$defs/...), and its"
            " patterns use RE2 syntax (no backreferences nor lookaround).",
            "change_reason": "Recorded with your name. The version is a draft until another"
            " designer approves it.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "name" not in self.fields:  # a published version's read-only page
            return
        if self.initial.get("input_schema") is None:
            # Shown as "{}" (any object), not "null".
            self.initial["input_schema"] = {}
        names = SagaDefinition.objects.order_by("name").values_list("name", flat=True).distinct()
        known = ", ".join(names) or "none yet"
        self.fields["name"].help_text = (
            f"An existing name gets its next version; a new name starts at version 1."
            f" Existing: {known}."
        )
        self.fields["change_reason"].required = True
        self.fields["change_reason"].error_messages["required"] = (
            "A reason is required: the reviewing designer reads it."
        )

    def clean_input_schema(self) -> Any:
        schema = self.cleaned_data.get("input_schema")
        if schema in (None, {}):
            return None
        if not isinstance(schema, dict):
            raise ValidationError("must be a JSON object (a JSON Schema)")
        problems = schemas.schema_problems(schema)
        if problems:
            raise ValidationError(problems)
        return schema


@admin.register(SagaDefinition)
class SagaDefinitionAdmin(admin.ModelAdmin):
    """Versions never change; a change is a new version, composed on the add page as a draft.

    The add page validates the steps with the engine's validator and, on saving, hands the whole
    declaration to `drafts.definition_compose`, which writes the draft and its steps the way
    syncing a code declaration does. The admin's own save of the form and inline is skipped.
    A draft's page shows its changes against the published version, and offers another designer
    to approve or reject it.
    """

    list_display = (
        "name",
        "version",
        "title",
        "status",
        "is_active",
        "origin",
        "composed_by",
        "reviewed_by",
        "step_count",
        "instance_count",
        "created_at",
    )
    list_display_links = ("name", "version")
    list_filter = ("status", "name", "is_active")
    list_select_related = ("composed_by", "reviewed_by")
    search_fields = ("name", "title")
    inlines = (StepInline, AuditInline)
    form = ComposeForm
    readonly_fields = ("schema", "origin", "step_count", "instance_count", "changes")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SagaDefinition]:
        return (
            super()
            .get_queryset(request)
            .annotate(instance_total=_count_of(SagaInstance), step_total=_count_of(StepDefinition))
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            fields = ("name", "title", "description", "input_schema", "change_reason")
            return ((None, {"fields": fields}),)
        fieldsets: list[Any] = [
            (
                None,
                {
                    "fields": (
                        "name",
                        "version",
                        "title",
                        "description",
                        "status",
                        "is_active",
                        "origin",
                        "instance_count",
                        "created_at",
                    )
                },
            ),
            (
                "Review",
                {
                    "fields": (
                        "composed_by",
                        "change_reason",
                        "reviewed_by",
                        "reviewed_at",
                        "review_comment",
                    )
                },
            ),
        ]
        if not obj.is_published:
            fieldsets.append(("Changes from the published version", {"fields": ("changes",)}))
        fieldsets.append(("Input schema", {"fields": ("schema",)}))
        return fieldsets

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        # A version being composed has no audit trail yet.
        return self.inlines if obj is not None else (StepInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return may_compose(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        review = self.admin_site.admin_view
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "compose/diagram/",
                review(self.diagram_view),
                name="{}_{}_diagram".format(*info),
            ),
            path(
                "<path:object_id>/approve/",
                review(self.approve_view),
                name="{}_{}_approve".format(*info),
            ),
            path(
                "<path:object_id>/reject/",
                review(self.reject_view),
                name="{}_{}_reject".format(*info),
            ),
            *super().get_urls(),
        ]

    def diagram_view(self, request: HttpRequest) -> HttpResponse:
        """Draw the steps being composed (the add form, POSTed as it stands), or say what is
        wrong with them: the compose page refreshes it as the step rows change."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not may_compose(request):
            raise PermissionDenied
        inline = StepInline(self.model, self.admin_site)
        formset_class = inline.get_formset(request, None)
        formset: Any = formset_class(
            data=request.POST, instance=SagaDefinition(), prefix=formset_class.get_default_prefix()
        )
        problems = composer_problems(formset)
        context = {
            "problems": problems,
            "diagram": None if problems else render_diagram(drawn_steps(formset.declared_steps())),
        }
        return TemplateResponse(request, "admin/bpm/sagadefinition/composer_diagram.html", context)

    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return reviews.review(self, request, object_id, reviews.APPROVE)

    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return reviews.review(self, request, object_id, reviews.REJECT)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(reviews.review_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.instances.exists():
            return False
        return super().has_delete_permission(request, obj)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        source = _source_definition(request)
        if source is None:
            return super().get_changeform_initial_data(request)
        return {
            "name": source.name,
            "title": source.title,
            "description": source.description,
            "input_schema": source.input_schema,
        }

    def get_formset_kwargs(
        self, request: HttpRequest, obj: Any, inline: Any, prefix: str
    ) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        source = _source_definition(request)
        if source is not None and request.method == "GET":
            kwargs["initial"] = [_step_initial(step) for step in source.steps.order_by("position")]
        return kwargs

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            "title": "Compose a new saga definition version",
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Save nothing yet: the version is written with its steps in save_related."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        steps = formsets[0]
        data = form.cleaned_data
        declaration = SagaDeclaration(
            name=data["name"],
            title=data["title"],
            description=data["description"],
            input_schema=data["input_schema"],
            steps=steps.declared_steps(),
        )
        definition, created = drafts.definition_compose(
            declaration=declaration, user=request.user, reason=data["change_reason"]
        )
        if not created:
            self.message_user(
                request,
                f"{definition} ({definition.status}) already has these steps and input schema:"
                " no new version was made.",
                messages.WARNING,
            )
        adopt(form.instance, definition)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        """Show the new draft, with its changes, rather than the list."""
        if obj.is_draft:
            self.message_user(
                request,
                f"{obj} is a draft: it starts no saga until another designer approves it.",
                messages.SUCCESS,
            )
        url = reverse("admin:bpm_sagadefinition_change", args=[obj.pk])
        return HttpResponseRedirect(url)

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> list[dict[str, Any]]:
        return [{"added": {}}]

    @admin.display(description="made by")
    def origin(self, definition: SagaDefinition) -> str:
        return "code declaration" if definition.fingerprint else "admin"

    @admin.display(description="steps", ordering="step_total")
    def step_count(self, definition: SagaDefinition) -> int:
        return definition.step_total  # type: ignore[attr-defined]

    @admin.display(description="instances", ordering="instance_total")
    def instance_count(self, definition: SagaDefinition) -> int:
        return definition.instance_total  # type: ignore[attr-defined]

    schema = shown("input_schema", pretty_json, "input schema")

    @admin.display(description="changes")
    def changes(self, definition: SagaDefinition) -> str:
        return reviews.render_changes(definition)


def _count_of(model: Any) -> Coalesce:
    """Return a subquery annotation counting a definition's rows of `model` (no join fan-out)."""
    rows = (
        model.objects.filter(definition=OuterRef("pk"))
        .order_by()
        .values("definition")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def _source_definition(request: HttpRequest) -> SagaDefinition | None:
    """Return the version named by ?from=<id>, which a new version starts as a copy of."""
    source_id = request.GET.get("from", "")
    if not source_id.isdigit():
        return None
    return SagaDefinition.objects.filter(pk=int(source_id)).first()


def _step_initial(step: StepDefinition) -> dict[str, Any]:
    initial = {field: getattr(step, field) for field in StepForm.Meta.fields}
    initial["after"] = after_text(step.after)
    initial["wait"] = step.wait or {}
    # An HTTP call's label is no handler's name: the call itself is copied.
    for name, field in (("action", "action_http"), ("compensation", "compensation_http")):
        if initial[field]:
            initial[name] = ""
    return initial


def composer_problems(formset: Any) -> list[str]:
    """Return what keeps the composed steps from being drawn (empty when they can be)."""
    if not formset.management_form.is_valid():
        return ["the step rows were not sent whole: reload the page"]
    problems: list[str] = []
    for index, errors in enumerate(formset.errors, start=1):
        for field, messages_ in errors.items():
            where = f"row {index}" if field == "__all__" else f"row {index}, {field}"
            problems.extend(f"{where}: {message}" for message in messages_)
    if problems:
        return problems
    steps = formset.declared_steps()
    try:
        validate_steps(list(steps))
    except DefinitionInvalid as exc:
        return str(exc).split("; ")
    return []


def drawn_steps(steps: tuple[StepDeclaration, ...]) -> list[StepDefinition]:
    """Return composed steps as unsaved rows, which the diagram draws as it draws saved ones."""
    return [
        StepDefinition(
            name=step.name,
            action=step.action or f"waits for a {waits.kind_of(step.wait).replace('_', ' ')}",
            compensation=step.compensation,
            kind=step.kind,
            max_attempts=step.retry.max_attempts,
            after=None if step.after is None else list(step.after),
        )
        for step in steps
    ]
