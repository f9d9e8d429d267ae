"""The reads behind the API's GETs, each a fixed number of queries however many rows it returns."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from bpm import ownership, permissions
from bpm.api.fields import MAX_ID
from bpm.errors import NotFound
from bpm.models import (
    DefinitionStatus,
    SagaDefinition,
    SagaEvent,
    SagaInstance,
    StepDefinition,
)


def parse_id(text: str, kind: str) -> int:
    """Return the integer id in a URL, or raise NotFound: a malformed id names nothing."""
    if not re.fullmatch(r"[0-9]{1,19}", text) or not 0 < int(text) <= MAX_ID:
        raise NotFound(f"no {kind} with id {text!r}")
    return int(text)


def saga_uuid(text: str) -> uuid.UUID:
    """Return the saga id in a URL, or raise NotFound."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"no saga with id {text!r}: not a UUID") from None


def sagas_visible_to(user: Any) -> QuerySet[SagaInstance]:
    """Return the sagas `user` may see: every one, or the ones it started (bpm.ownership)."""
    return ownership.visible_to(user, SagaInstance.objects.all())


def sagas_matching(
    *,
    user: Any,
    status: str | None = None,
    definition: str | None = None,
    business_key: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[SagaInstance]:
    """Return the sagas `user` may see that match every filter given."""
    sagas = sagas_visible_to(user).select_related("definition")
    if status is not None:
        sagas = sagas.filter(status=status)
    if definition is not None:
        sagas = sagas.filter(definition_name=definition)
    if business_key is not None:
        sagas = sagas.filter(business_key=business_key)
    if created_after is not None:
        sagas = sagas.filter(created_at__gte=created_after)
    if created_before is not None:
        sagas = sagas.filter(created_at__lt=created_before)
    return sagas


def saga_with_runs(text: str, user: Any) -> SagaInstance:
    """Return the saga `user` may see, with its definition and step runs, or raise NotFound."""
    sagas = sagas_visible_to(user).select_related("definition").prefetch_related("step_runs")
    saga = sagas.filter(pk=saga_uuid(text)).first()
    if saga is None:
        raise NotFound(f"no saga with id {text}")
    return saga


def saga_visible(text: str, user: Any) -> SagaInstance:
    """Return the saga `user` may see, or raise NotFound."""
    saga = sagas_visible_to(user).filter(pk=saga_uuid(text)).first()
    if saga is None:
        raise NotFound(f"no saga with id {text}")
    return saga


def saga_events(saga_id: uuid.UUID) -> QuerySet[SagaEvent]:
    """Return the saga's timeline with each event's step."""
    return SagaEvent.objects.filter(saga_id=saga_id).select_related("step_run__step")


@dataclass
class DefinitionVersions:
    """Every published version of one definition, newest first, and the one a start would use.

    Drafts and rejected versions are no part of the business process: the API never shows them.
    """

    name: str
    versions: list[SagaDefinition] = field(default_factory=list)

    @property
    def latest(self) -> SagaDefinition | None:
        return next((version for version in self.versions if version.is_active), None)

    @property
    def latest_version(self) -> int | None:
        return self.latest.version if self.latest else None

    @property
    def title(self) -> str:
        return (self.latest or self.versions[0]).title

    @property
    def version_numbers(self) -> list[int]:
        return [version.version for version in self.versions]


def published() -> QuerySet[SagaDefinition]:
    """Return the definition versions that may start sagas or have started some."""
    return SagaDefinition.objects.filter(status=DefinitionStatus.PUBLISHED)


def definitions_by_name() -> list[DefinitionVersions]:
    """Return every definition name with its versions (without their steps), by name."""
    found: dict[str, DefinitionVersions] = defaultdict(lambda: DefinitionVersions(name=""))
    for definition in published().order_by("name", "-version"):
        group = found[definition.name]
        group.name = definition.name
        group.versions.append(definition)
    return list(found.values())


def definition_versions(name: str) -> DefinitionVersions:
    """Return one definition's versions with their steps, or raise NotFound."""
    steps = Prefetch("steps", queryset=StepDefinition.objects.order_by("position"))
    # PostgreSQL refuses NUL in a query parameter; no definition can be named with one anyway.
    versions = (
        []
        if "\x00" in name
        else list(published().filter(name=name).order_by("-version").prefetch_related(steps))
    )
    if not versions:
        raise NotFound(f"no saga definition named {name!r}")
    return DefinitionVersions(name=name, versions=versions)


def _readable_versions(name: str, user: Any) -> QuerySet[SagaDefinition]:
    # Everyone who reads definitions sees the published versions; only those who may compose
    # see drafts and rejected versions.
    versions = SagaDefinition.objects.filter(name=name).select_related("composed_by", "reviewed_by")
    if not permissions.may(user, permissions.COMPOSE):
        versions = versions.filter(status=DefinitionStatus.PUBLISHED)
    return versions


def versions_visible(name: str, user: Any) -> list[SagaDefinition]:
    """Return the versions of `name` that `user` may read, newest first, or raise NotFound."""
    found = list(_readable_versions(name, user).order_by("-version"))
    if not found:
        raise NotFound(f"no saga definition named {name!r}")
    return found


def version_visible(name: str, version: str, user: Any) -> SagaDefinition:
    """Return one version of `name` that `user` may read, or raise NotFound.

    The version comes from the URL as text, so that any text gets the API's own 404.
    """
    if not re.fullmatch(r"[0-9]{1,9}", version):
        raise NotFound(f"saga definition {name!r} has no version {version!r}")
    found = _readable_versions(name, user).filter(version=int(version)).first()
    if found is None:
        raise NotFound(f"saga definition {name!r} has no version {version} you may read")
    return found
