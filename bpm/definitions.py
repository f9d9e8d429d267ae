"""Turn code declarations into versioned definition rows, and read definitions back cheaply."""

from __future__ import annotations

from functools import lru_cache

from django.db import transaction
from django.db.models import Max

from bpm import registry
from bpm.declarations import SagaDeclaration, validate_steps
from bpm.errors import NotFound
from bpm.models import SagaDefinition, StepDefinition


def sync_declaration(declaration: SagaDeclaration) -> tuple[SagaDefinition, bool]:
    """Return the definition row for a declaration, making a new version if it changed."""
    validate_steps(list(declaration.steps))
    fingerprint = declaration.fingerprint()
    with transaction.atomic():
        latest = (
            SagaDefinition.objects.select_for_update()
            .filter(name=declaration.name)
            .order_by("-version")
            .first()
        )
        if latest is not None and latest.fingerprint == fingerprint:
            return latest, False
        definition = SagaDefinition.objects.create(
            name=declaration.name,
            version=(latest.version + 1) if latest else 1,
            title=declaration.title,
            description=declaration.description,
            input_schema=declaration.input_schema,
            fingerprint=fingerprint,
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
            )
            for position, step in enumerate(declaration.steps, start=1)
        )
    return definition, True


def sync_all() -> list[tuple[SagaDefinition, bool]]:
    """Sync every saga declared in code."""
    return [sync_declaration(declaration) for declaration in registry.declarations()]


def resolve(name: str, version: int | None = None) -> SagaDefinition:
    """Return the named definition: the given version, or the latest active one."""
    versions = SagaDefinition.objects.filter(name=name)
    if version is not None:
        definition = versions.filter(version=version).first()
        if definition is None:
            latest = versions.aggregate(latest=Max("version"))["latest"]
            known = f"versions 1 to {latest}" if latest else "no versions"
            raise NotFound(f"saga definition {name!r} has no version {version} ({known})")
        return definition
    definition = versions.filter(is_active=True).order_by("-version").first()
    if definition is None:
        names = sorted(set(SagaDefinition.objects.values_list("name", flat=True)))
        raise NotFound(
            f"no active saga definition named {name!r}; known: {', '.join(names) or 'none'}"
        )
    return definition


@lru_cache(maxsize=512)
def steps_of(definition_id: int) -> tuple[StepDefinition, ...]:
    """Return a definition's steps in order; cached, since published versions never change."""
    return tuple(StepDefinition.objects.filter(definition_id=definition_id).order_by("position"))
