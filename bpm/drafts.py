"""Changing a business process takes two designers: one composes a draft, another approves it.

These are the services the admin (and anything else) calls. A composed version is a DRAFT that
starts no saga; a second person holding `bpm.compose_sagadefinition` approves it (PUBLISHED) or
rejects it (REJECTED). Nobody approves their own draft, superusers included: the point is four
eyes. Every step is recorded on the version and in its audit trail.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from bpm import clock, definitions, permissions
from bpm.changes import VersionDiff, compare
from bpm.declarations import SagaDeclaration
from bpm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from bpm.models import DefinitionEventType, DefinitionStatus, SagaDefinition, actor_for_user


def definition_compose(
    *, declaration: SagaDeclaration, user: Any, reason: str
) -> tuple[SagaDefinition, bool]:
    """Return a new draft version composed by `user`, or the pending draft with the same steps."""
    actor = _authorized(user)
    return definitions.compose_version(
        declaration, actor=actor, composed_by=user, reason=_required(reason, "reason")
    )


def definition_approve(*, definition_id: int, user: Any, comment: str) -> SagaDefinition:
    """Publish a draft composed by someone else; new sagas of its name then start on it."""
    actor = _authorized(user)
    comment = _required(comment, "comment")
    with transaction.atomic():
        draft = _locked_draft(definition_id, verb="approve")
        refusal = approval_refusal(draft, user)
        if refusal:
            raise PermissionDenied(refusal)
        current = definitions.published_version(draft.name)
        if current is not None and current.version > draft.version:
            raise Conflict(
                f"{current} was published after {draft} was composed: approving the draft would"
                f" change nothing; compose it again from {current}"
            )
        _review(draft, user, DefinitionStatus.PUBLISHED, comment)
        draft.log(DefinitionEventType.APPROVED, actor, comment)
        return draft


def definition_reject(*, definition_id: int, user: Any, reason: str) -> SagaDefinition:
    """Reject a draft (or withdraw one's own): it will never start a saga."""
    actor = _authorized(user)
    reason = _required(reason, "reason")
    with transaction.atomic():
        draft = _locked_draft(definition_id, verb="reject")
        _review(draft, user, DefinitionStatus.REJECTED, reason)
        draft.log(DefinitionEventType.REJECTED, actor, reason)
        return draft


def approval_refusal(draft: SagaDefinition, user: Any) -> str:
    """Return why `user` may not approve `draft` (four eyes), or "" if they may."""
    if draft.composed_by_id is None:
        return (
            f"{draft} has no known composer (the account was deleted), so no second person can"
            " be told apart: reject it and compose it again"
        )
    if draft.composed_by_id == getattr(user, "pk", None):
        return (
            f"{user.get_username()} composed {draft} and may not approve it:"
            " a second designer must approve a change to the business process"
        )
    return ""


def changes_of(definition: SagaDefinition) -> VersionDiff:
    """Return what a version changes against the published version that starts sagas now."""
    current = definitions.published_version(definition.name)
    base = definitions.declaration_of(current) if current is not None else None
    return compare(
        base, definitions.declaration_of(definition), base_label=str(current) if current else ""
    )


def _authorized(user: Any) -> str:
    # No trusted-caller path: a change of the business process is always somebody's.
    if user is None or not permissions.may(user, permissions.COMPOSE):
        raise PermissionDenied(permissions.refusal(user, permissions.COMPOSE))
    return actor_for_user(user)


def _required(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput(f"a {what} is required", path=what)
    return text


def _locked_draft(definition_id: int, *, verb: str) -> SagaDefinition:
    definition = SagaDefinition.objects.select_for_update().filter(pk=definition_id).first()
    if definition is None:
        raise NotFound(f"no saga definition version with id {definition_id}")
    # Every version of the name, so two approvals cannot both pass the staleness check.
    list(SagaDefinition.objects.select_for_update().filter(name=definition.name).values("pk"))
    if not definition.is_draft:
        raise Conflict(f"cannot {verb} {definition}: it is {definition.status}, not a DRAFT")
    return definition


def _review(draft: SagaDefinition, user: Any, status: str, comment: str) -> None:
    draft.status = status
    draft.reviewed_by = user
    draft.reviewed_at = clock.now()
    draft.review_comment = comment
    draft.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_comment"])
