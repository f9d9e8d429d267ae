"""The definitions pages: every saga definition with its versions, and one definition in full."""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import groupby

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from bpm import permissions, totals
from bpm.admin.reviews import render_changes
from bpm.dashboard.access import dashboard_view, page_context
from bpm.dashboard.diagram import render_diagram
from bpm.dashboard.statistics import (
    StatusRow,
    status_row,
    status_rows,
    status_totals,
)
from bpm.models import DefinitionEvent, SagaDefinition, SagaStatus, StepDefinition
from bpm.states import DefinitionEventType


@dataclass(frozen=True)
class DefinitionSummary:
    """A definition's name, its versions (latest first) and how its sagas stand."""

    name: str
    versions: list[SagaDefinition]
    counts: StatusRow
    diagram: SafeString

    @property
    def latest(self) -> SagaDefinition:
        """Return the version that starts sagas (the newest published), else the newest."""
        return _published_first(self.versions)


@dashboard_view
def definition_list(request: HttpRequest) -> HttpResponse:
    """Render every definition: its versions, the latest one's diagram and its sagas' statuses."""
    versions = _with_pauser(SagaDefinition.objects.order_by("name", "-version")).prefetch_related(
        Prefetch("steps", queryset=StepDefinition.objects.order_by("position"))
    )
    counts = totals.counts_by("name")
    summaries = []
    for name, named in groupby(versions, key=lambda definition: definition.name):
        rows = list(named)
        summaries.append(
            DefinitionSummary(
                name=name,
                versions=rows,
                counts=status_row(name, counts.get(name, {}), definition=name),
                diagram=render_diagram(list(_published_first(rows).steps.all())),
            )
        )
    context = page_context(
        request,
        "Saga definitions",
        tab="definitions",
        definitions=summaries,
        may_pause=permissions.may(request.user, permissions.RETRY),
    )
    return render(request, "dashboard/definitions.html", context)


@dashboard_view
def definition_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Render one definition at a version (?version=N, else the published one) with its steps.

    A version that is not published (a draft, a rejected one) is shown with its changes against
    the published version, as its reviewers see it in the admin.
    """
    versions = list(_with_pauser(SagaDefinition.objects.filter(name=name).order_by("-version")))
    if not versions:
        raise Http404(f"There is no saga definition named “{name}”.")
    chosen = _chosen_version(versions, request.GET.get("version"))
    steps = list(chosen.steps.order_by("position"))
    counts = totals.counts_by("version", name=name)
    context = page_context(
        request,
        f"Saga definition {chosen}",
        tab="definitions",
        name=name,
        versions=versions,
        definition=chosen,
        steps=steps,
        diagram=render_diagram(steps),
        input_schema=_pretty(chosen.input_schema),
        changes=None if chosen.is_published else render_changes(chosen),
        statuses=SagaStatus.choices,
        rows=status_rows(
            {version.version: counts.get(version.version, {}) for version in versions},
            param="version",
            reverse=True,
            definition=name,
        ),
        totals=status_totals(counts, definition=name),
        move_here=_move_here(request, chosen, counts),
        may_pause=permissions.may(request.user, permissions.RETRY),
    )
    return render(request, "dashboard/definitions_detail.html", context)


def _with_pauser(versions: QuerySet[SagaDefinition]) -> QuerySet[SagaDefinition]:
    """Annotate each version with `paused_by`: who paused it last (shown while it is paused)."""
    pauses = DefinitionEvent.objects.filter(
        definition=OuterRef("pk"), type=DefinitionEventType.PAUSED
    ).order_by("-at", "-pk")
    return versions.annotate(paused_by=Subquery(pauses.values("actor")[:1]))


MOVABLE = (SagaStatus.STUCK, SagaStatus.RUNNING)


def _move_here(
    request: HttpRequest, target: SagaDefinition, counts: dict[int, dict[str, int]]
) -> list[tuple[int, str, int, str]]:
    """Return (version, status, sagas, link) for the other versions' sagas that could move to
    `target` (a migrate batch's confirmation); empty for those who may not move sagas."""
    if not target.is_published or not permissions.may(request.user, permissions.MIGRATE):
        return []
    links = []
    for version, by_status in sorted(counts.items()):
        for status in MOVABLE:
            number = by_status.get(status, 0)
            if version == target.version or not number:
                continue
            query: dict[str, str | int] = {
                "definition": target.name,
                "version": version,
                "status": str(status),
                "action": "migrate",
                "target_version": target.version,
            }
            links.append(
                (
                    version,
                    str(status),
                    number,
                    f"{reverse('dashboard:batch_new')}?{urlencode(query)}",
                )
            )
    return links


def _published_first(versions: list[SagaDefinition]) -> SagaDefinition:
    return next((version for version in versions if version.is_published), versions[0])


def _chosen_version(versions: list[SagaDefinition], asked: str | None) -> SagaDefinition:
    if asked is None or asked == "":
        return _published_first(versions)
    by_number = {str(definition.version): definition for definition in versions}
    if asked not in by_number:
        known = ", ".join(sorted(by_number, key=int))
        raise Http404(
            f"Saga definition “{versions[0].name}” has no version “{asked}” (it has {known})."
        )
    return by_number[asked]


def _pretty(schema: object) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) if schema is not None else ""
