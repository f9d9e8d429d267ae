"""Turn code declarations into versioned definition rows, and read definitions back cheaply.

A version declared in code is published by the deployment that syncs it. A version composed in
the admin is a draft, which starts no saga until a second designer approves it (bpm/drafts.py).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.db import transaction
from django.db.models import Max

from bpm import graph, registry, schemas
from bpm.declarations import SagaDeclaration, validate_steps
from bpm.errors import NotFound
from bpm.models import DefinitionEventType, DefinitionStatus, SagaDefinition, StepDefinition

# The actor recorded for versions that a deployment published from code.
DEPLOYMENT = "deployment"


def sync_declaration(declaration: SagaDeclaration) -> tuple[SagaDefinition, bool]:
    """Return the definition row for a declaration, making a new version if it changed."""
    validate_declaration(declaration)
    fingerprint = declaration.fingerprint()
    with transaction.atomic():
        latest = _latest_locked(declaration.name)
        # Versions composed in the admin have no fingerprint and do not count as a change of code:
        # one stays the latest until the declaration in code changes.
        declared = (
            SagaDefinition.objects.filter(name=declaration.name)
            .exclude(fingerprint="")
            .order_by("-version")
            .first()
        )
        if declared is not None and declared.fingerprint == fingerprint:
            return declared, False
        definition = _create_version(
            declaration, latest, fingerprint=fingerprint, status=DefinitionStatus.PUBLISHED
        )
        definition.log(DefinitionEventType.DEPLOYED, DEPLOYMENT)
        return definition, True


def compose_version(
    declaration: SagaDeclaration, *, actor: str, composed_by: Any = None, reason: str = ""
) -> tuple[SagaDefinition, bool]:
    """Return a new draft version, or the published version or pending draft with its steps.

    The same validation and the same row-writing as syncing a code declaration; the version gets
    no fingerprint, since no code declares it, and starts no saga until it is approved.
    """
    validate_declaration(declaration)
    with transaction.atomic():
        latest = _latest_locked(declaration.name)
        current = published_version(declaration.name)
        if current is not None and same_steps(current, declaration):
            return current, False
        for draft in pending_drafts(declaration.name):
            if same_steps(draft, declaration):
                return draft, False
        definition = _create_version(
            declaration, latest, fingerprint="", status=DefinitionStatus.DRAFT
        )
        definition.composed_by = composed_by
        definition.change_reason = reason
        definition.save(update_fields=["composed_by", "change_reason"])
        definition.log(DefinitionEventType.COMPOSED, actor, reason)
        return definition, True


def validate_declaration(declaration: SagaDeclaration) -> None:
    """Raise DefinitionInvalid unless the engine can run the steps and use the input schema."""
    validate_steps(list(declaration.steps))
    if declaration.input_schema:
        schemas.check(declaration.input_schema)


def declaration_of(definition: SagaDefinition) -> SagaDeclaration:
    """Return a definition row as the declaration it could have been made from."""
    steps = StepDefinition.objects.filter(definition=definition).order_by("position")
    return SagaDeclaration(
        name=definition.name,
        title=definition.title,
        description=definition.description,
        input_schema=definition.input_schema,
        steps=tuple(step.as_declaration() for step in steps),
    )


def same_steps(definition: SagaDefinition, declaration: SagaDeclaration) -> bool:
    """Return whether the declaration has the definition's steps and input schema."""
    existing = declaration_of(definition)
    return (existing.steps, existing.input_schema or None) == (
        declaration.steps,
        declaration.input_schema or None,
    )


def latest_version(name: str) -> SagaDefinition | None:
    """Return the newest version of the named definition, whatever its status."""
    return SagaDefinition.objects.filter(name=name).order_by("-version").first()


def published_version(name: str) -> SagaDefinition | None:
    """Return the version that starts the named definition's sagas: the newest published one."""
    return (
        SagaDefinition.objects.filter(name=name, status=DefinitionStatus.PUBLISHED, is_active=True)
        .order_by("-version")
        .first()
    )


def pending_drafts(name: str) -> list[SagaDefinition]:
    """Return the named definition's drafts that wait for approval, newest first."""
    drafts = SagaDefinition.objects.filter(name=name, status=DefinitionStatus.DRAFT)
    return list(drafts.order_by("-version"))


def _latest_locked(name: str) -> SagaDefinition | None:
    return SagaDefinition.objects.select_for_update().filter(name=name).order_by("-version").first()


def _create_version(
    declaration: SagaDeclaration, latest: SagaDefinition | None, *, fingerprint: str, status: str
) -> SagaDefinition:
    definition = SagaDefinition.objects.create(
        name=declaration.name,
        version=(latest.version + 1) if latest else 1,
        title=declaration.title,
        description=declaration.description,
        input_schema=declaration.input_schema,
        fingerprint=fingerprint,
        status=status,
    )
    StepDefinition.objects.bulk_create(
        StepDefinition(
            definition=definition,
            position=position,
            name=step.name,
            action=step.action,
            compensation=step.compensation,
            kind=step.kind,
            max_attempts=step.retry.max_attempts,
            initial_backoff=step.retry.initial_backoff,
            backoff_multiplier=step.retry.multiplier,
            max_backoff=step.retry.max_backoff,
            jitter=step.retry.jitter,
            timeout=step.timeout,
            queue=step.queue,
            after=list(step.after) if step.after is not None else None,
            action_http=step.action_http,
            compensation_http=step.compensation_http,
            wait=step.wait,
        )
        for position, step in enumerate(declaration.steps, start=1)
    )
    return definition


def sync_all() -> list[tuple[SagaDefinition, bool]]:
    """Sync every saga declared in code."""
    return [sync_declaration(declaration) for declaration in registry.declarations()]


def resolve(name: str, version: int | None = None) -> SagaDefinition:
    """Return the published definition that starts sagas: the given version, or the latest one.

    A draft or rejected version is never returned: it is no part of the business process.
    """
    published = SagaDefinition.objects.filter(name=name, status=DefinitionStatus.PUBLISHED)
    if version is not None:
        definition = published.filter(version=version).first()
        if definition is None:
            raise NotFound(_no_version(name, version))
        return definition
    definition = published.filter(is_active=True).order_by("-version").first()
    if definition is None:
        names = sorted(
            set(
                SagaDefinition.objects.filter(status=DefinitionStatus.PUBLISHED).values_list(
                    "name", flat=True
                )
            )
        )
        raise NotFound(
            f"no active saga definition named {name!r}; known: {', '.join(names) or 'none'}"
        )
    return definition


def _no_version(name: str, version: int) -> str:
    versions = SagaDefinition.objects.filter(name=name)
    unpublished = versions.filter(version=version).first()
    if unpublished is not None:
        return (
            f"saga definition {name!r} version {version} is {unpublished.status}, not published:"
            " it starts no saga"
        )
    latest = versions.aggregate(latest=Max("version"))["latest"]
    known = f"versions 1 to {latest}" if latest else "no versions"
    return f"saga definition {name!r} has no version {version} ({known})"


@lru_cache(maxsize=512)
def steps_of(definition_id: int) -> tuple[StepDefinition, ...]:
    """Return a definition's steps in order; cached, since published versions never change."""
    return tuple(StepDefinition.objects.filter(definition_id=definition_id).order_by("position"))


def is_linear(definition_id: int) -> bool:
    """Return whether a definition's steps run one after the other (no parallel branches)."""
    return graph.is_linear(
        graph.predecessors((step.name, step.after) for step in steps_of(definition_id))
    )
