"""Batch repairs: one operator action applied to every saga a filter of the saga list matches.

A batch keeps the list's validated query string, the action, its arguments and a reason; the
sagas it matched are written as its items when it is made, so the batch acts on what the operator
confirmed. Its doorbell (an RQ job carrying the batch id) runs `batch_work` in a worker, which acts
on each saga through the same service an operator's click calls (bpm.services): each saga's audit
event names the batch. The item's result and the batch's counts are written in the transaction of
the saga's action, under the item's row lock, so a worker that dies mid-batch leaves every saga
either done once with its result, or untouched and still pending; the sweeper rings again for a
batch gone quiet (`redrive_stalled`). This module is the only writer of batch rows.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import QueryDict
from django.utils.http import urlencode

from bpm import clock, dispatch, permissions, services
from bpm.dashboard.saga_filter import SagaFilter
from bpm.errors import Conflict, InvalidInput, NotFound, PermissionDenied, SagaError
from bpm.models import (
    Batch,
    BatchAction,
    BatchItem,
    BatchItemStatus,
    BatchStatus,
    SagaDefinition,
    SagaInstance,
)

log = logging.getLogger(__name__)

ACTIONS = tuple(BatchAction.values)
SERVICES: dict[str, Callable[..., services.ActionResult]] = {
    BatchAction.RETRY: services.saga_retry,
    BatchAction.SKIP: services.saga_skip,
    BatchAction.COMPENSATE: services.saga_compensate,
    BatchAction.ABORT: services.saga_abort,
    BatchAction.MIGRATE: services.saga_move,
}
# The list's parameters that page or sort it: they select no saga, so a batch does not keep them.
PAGING = frozenset({"sort", "size", "cursor"})
# How many matched sagas the confirmation previews one by one (each is a locked read).
PREVIEW_SAMPLE = 200
# A worker reads this many pending items at a time and acts on them GROUP to a transaction (one
# commit for several sagas); it gives its job up after WORK_SECONDS and rings again.
CHUNK = 100
GROUP = 20
TAKEN_PAUSE = 0.2
WORK_SECONDS = 60.0
INSERT_BATCH = 2000


# --- the filter -------------------------------------------------------------------------------


def saga_filter(query: QueryDict | Mapping[str, Any], user: Any = None) -> SagaFilter:
    """Return the saga list's filter form bound to `query` (a query string's dict, or a dict);
    `user` is who "assigned to me" means."""
    query = query.copy() if isinstance(query, QueryDict) else _query_dict(query)
    for name in PAGING:
        # Sorting and paging select no saga; a stale page link must not refuse a batch.
        query.pop(name, None)
    names = list(SagaDefinition.objects.order_by("name").values_list("name", flat=True).distinct())
    return SagaFilter(query, definitions=names, user=user)


def _query_dict(values: Mapping[str, Any]) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, value in values.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            query.appendlist(str(name), "" if item is None else str(item))
    return query


def selection(
    query: QueryDict | Mapping[str, Any], user: Any = None
) -> tuple[str, QuerySet[SagaInstance]]:
    """Return the filter's query string (paging dropped) and the sagas it selects.

    Raises InvalidInput naming every invalid parameter (its path is `filter.<name>`).
    """
    form = saga_filter(query, user)
    valid = form.is_valid()
    fields = {
        name: [error["message"] for error in errors]
        for name, errors in form.errors.get_json_data().items()
    }
    unknown = sorted(set(form.data) - set(form.fields))
    for name in unknown:
        fields[name] = [
            f"Not a filter of the saga list; it takes {', '.join(sorted(form.fields))}."
        ]
    if not valid or unknown:
        raise InvalidFilter(
            "; ".join(f"filter.{name}: {' '.join(messages)}" for name, messages in fields.items()),
            fields,
        )
    data = cast(QueryDict, form.data)
    kept = [
        (name, value)
        for name in form.fields
        if name not in PAGING
        for value in data.getlist(name)
        if value != ""
    ]
    return urlencode(kept), form.sagas()


class InvalidFilter(InvalidInput):
    """The filter is not one the saga list accepts; `fields` has each parameter's messages."""

    def __init__(self, message: str, fields: dict[str, list[str]]):
        super().__init__(message, path="filter")
        self.fields = fields


# --- previewing -------------------------------------------------------------------------------


@dataclass
class Preview:
    matched: int
    sampled: int
    # (plan lines, how many of the sample would run it), commonest first.
    plans: list[tuple[list[str], int]] = field(default_factory=list)
    # (why, how many of the sample, a few of their ids), commonest first.
    refusals: list[tuple[str, int, list[str]]] = field(default_factory=list)

    @property
    def is_sample(self) -> bool:
        return self.sampled < self.matched

    @property
    def would_act(self) -> int:
        return sum(count for _, count in self.plans)


def batch_preview(
    *,
    query: QueryDict | Mapping[str, Any],
    action: str,
    patch: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    target_version: Any = None,
    user: Any = None,
    actor: str = "",
) -> Preview:
    """Return how many sagas match, and each plan and refusal with counts over a sample of them.

    Each saga of the sample is previewed by its own service, so a refusal says what the operator
    would read on that saga's page (a patch that breaks the input's schema, a committed pivot).
    """
    _check_arguments(action, patch, output)
    actor = permissions.authorize(user=user, actor=actor, action=action)
    _, sagas = selection(query, user)
    target = migration_target(query, action, target_version)
    matched = sagas.count()
    sample = list(sagas.order_by("created_at", "id").values_list("id", flat=True)[:PREVIEW_SAMPLE])
    plans: Counter[tuple[str, ...]] = Counter()
    refusals: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    arguments = _arguments(action, patch, output, target)
    for saga_id in sample:
        try:
            result = SERVICES[action](
                saga_id=saga_id, user=user, actor=actor, preview=True, **arguments
            )
        except (Conflict, InvalidInput, NotFound, PermissionDenied) as exc:
            refusals[str(exc)] += 1
            examples.setdefault(str(exc), []).append(str(saga_id))
            continue
        plans[tuple(result.describe())] += 1
    return Preview(
        matched=matched,
        sampled=len(sample),
        plans=[(list(plan), count) for plan, count in plans.most_common()],
        refusals=[(why, count, examples[why][:3]) for why, count in refusals.most_common()],
    )


def _check_arguments(action: str, patch: Any, output: Any) -> None:
    if action not in ACTIONS:
        raise InvalidInput(f"must be one of {', '.join(ACTIONS)}, not {action!r}", path="action")
    if patch is not None:
        if action != BatchAction.RETRY:
            raise InvalidInput("only a retry takes a patch to the input", path="patch")
        if not isinstance(patch, dict):
            raise InvalidInput(
                f"must be a JSON object (a merge patch), not {type(patch).__name__}", path="patch"
            )
    if output is not None:
        if action != BatchAction.SKIP:
            raise InvalidInput("only a skip takes the output to record", path="output")
        if not isinstance(output, dict):
            raise InvalidInput(f"must be a JSON object, not {type(output).__name__}", path="output")


def _arguments(
    action: str, patch: Any, output: Any, target: SagaDefinition | None = None
) -> dict[str, Any]:
    if action == BatchAction.MIGRATE:
        return {"target": target}
    if action == BatchAction.RETRY and patch is not None:
        return {"input_patch": patch}
    if action == BatchAction.SKIP:
        return {"output": output or {}}
    return {}


def migration_target(
    query: QueryDict | Mapping[str, Any], action: str, target_version: Any
) -> SagaDefinition | None:
    """Return the version a migrate batch moves its sagas to; None for the other actions.

    The definition is the one the filter names (a move never crosses definitions); the version
    is a whole number, given as a JSON integer or, from a form, as its digits.
    """
    if action != BatchAction.MIGRATE:
        if target_version not in (None, ""):
            raise InvalidInput("only a migrate batch takes a target version", path="target_version")
        return None
    version = _whole_number(target_version)
    form = saga_filter(query)
    name = form.cleaned_data.get("definition") if form.is_valid() else ""
    if not name:
        raise InvalidInput(
            "a migrate batch moves the sagas of one definition: filter by its name",
            path="filter.definition",
        )
    target = SagaDefinition.objects.filter(name=name, version=version).first()
    if target is None:
        raise InvalidInput(f"{name} has no version {version}", path="target_version")
    if not target.is_published:
        raise InvalidInput(
            f"{name} v{version} is {target.status}, not published: no saga moves to it",
            path="target_version",
        )
    return target


def _whole_number(value: Any) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        shown = "nothing" if value in (None, "") else repr(value)
        raise InvalidInput(
            f"must be the version number to move to (a whole number), not {shown}",
            path="target_version",
        )
    return value


# --- creating, cancelling ---------------------------------------------------------------------


def batch_create(
    *,
    query: QueryDict | Mapping[str, Any],
    action: str,
    reason: str,
    patch: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    target_version: Any = None,
    user: Any = None,
    actor: str = "",
) -> Batch:
    """Record a batch of every saga the filter matches now, and ring its doorbell on commit."""
    _check_arguments(action, patch, output)
    actor = permissions.authorize(user=user, actor=actor, action=action)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("a reason is required", path="reason")
    if len(reason) > 1000:
        raise InvalidInput("must be at most 1000 characters", path="reason")
    query_string, sagas = selection(query, user)
    target = migration_target(query, action, target_version)
    limit = settings.BPM_BATCH_MAX_SAGAS
    ids = list(sagas.order_by("created_at", "id").values_list("id", flat=True)[: limit + 1])
    if not ids:
        raise InvalidInput("no saga matches this filter", path="filter")
    if len(ids) > limit:
        raise InvalidInput(
            f"matches more than {limit} sagas (BPM_BATCH_MAX_SAGAS): narrow it", path="filter"
        )
    with transaction.atomic():
        batch = Batch.objects.create(
            created_by=user if user is not None else None,
            actor=actor,
            filter_query=query_string,
            action=action,
            patch=patch,
            output=output if action == BatchAction.SKIP else None,
            target=target,
            reason=reason,
            matched=len(ids),
        )
        BatchItem.objects.bulk_create(
            (BatchItem(batch=batch, saga_id=saga_id) for saga_id in ids), batch_size=INSERT_BATCH
        )
        dispatch.ring_batch(batch.pk)
    log.info("batch %s: %s of %s sagas by %s", batch.pk, action, len(ids), actor)
    return batch


def batch_cancel(*, batch_id: int, user: Any = None, actor: str = "") -> Batch:
    """Stop a batch before its next saga; what it did stays done."""
    with transaction.atomic():
        batch = batch_get(batch_id, lock=True)
        actor = permissions.authorize(user=user, actor=actor, action=batch.action)
        if not batch.is_open:
            raise Conflict(f"batch {batch.pk} is {batch.status}: there is nothing to cancel")
        batch.status = BatchStatus.CANCELLED
        batch.cancelled_by = actor
        batch.finished_at = batch.updated_at = clock.now()
        batch.save(update_fields=["status", "cancelled_by", "finished_at", "updated_at"])
    return batch


def batch_get(batch_id: Any, *, lock: bool = False) -> Batch:
    """Return the batch with this id, or raise NotFound."""
    rows = Batch.objects.select_for_update() if lock else Batch.objects.all()
    try:
        return rows.get(pk=int(batch_id))
    except (Batch.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"no batch with id {batch_id}") from None


# --- working --------------------------------------------------------------------------------


def batch_work(*, batch_id: int, seconds: float = WORK_SECONDS) -> int:
    """Act on the batch's pending sagas for up to `seconds`, then ring again; return how many.

    Several doorbells of one batch may run at once (a lost one rung again): each takes the next
    pending items it can lock, so they share the work and never act on one saga twice.
    """
    started = time.monotonic()
    if (
        not Batch.objects.filter(pk=batch_id, status=BatchStatus.PENDING).update(
            status=BatchStatus.RUNNING, updated_at=clock.now()
        )
        and not Batch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).exists()
    ):
        return 0  # cancelled, finished or deleted: a late doorbell
    batch = Batch.objects.select_related("created_by", "target").get(pk=batch_id)
    acted = 0
    while True:
        pending = list(
            BatchItem.objects.filter(batch_id=batch_id, status=BatchItemStatus.PENDING)
            .order_by("id")
            .values_list("id", flat=True)[:CHUNK]
        )
        if not pending:
            _finish(batch_id)
            return acted
        acted_on_chunk = 0
        for start in range(0, len(pending), GROUP):
            done = _act(batch, pending[start : start + GROUP])
            if done is None:
                return acted  # cancelled
            acted_on_chunk += done
            if time.monotonic() - started >= seconds:
                dispatch.ring_batch_now(batch_id)
                return acted + acted_on_chunk
        acted += acted_on_chunk
        if not acted_on_chunk:
            # Another doorbell of this batch holds these items: let it commit them.
            time.sleep(TAKEN_PAUSE)


COUNTERS = {
    BatchItemStatus.DONE: "done",
    BatchItemStatus.REFUSED: "refused",
    BatchItemStatus.FAILED: "failed",
}
RESULT_FIELDS = ["status", "message", "plan", "saga_status", "finished_at"]


def _act(batch: Batch, item_ids: list[int]) -> int | None:
    """Act on a group of sagas; return how many, or None when the batch was cancelled.

    One transaction holds the group's item rows locked, each saga's action (in its own savepoint,
    as bpm.services opens one), the items' results and the batch's counts: it commits all of
    them or none. Items another doorbell holds or finished are left to it.
    """
    with transaction.atomic():
        items = list(
            BatchItem.objects.select_for_update(skip_locked=True)
            .filter(pk__in=item_ids, status=BatchItemStatus.PENDING)
            .order_by("id")
        )
        if not items:
            return 0
        counts: Counter[str] = Counter()
        for item in items:
            item.status, item.message, item.plan, item.saga_status = _outcome(batch, item.saga_id)
            item.finished_at = clock.now()
            counts[COUNTERS[BatchItemStatus(item.status)]] += 1
        # The batch's row lock orders the group against a cancel: if the cancel committed
        # first, the group's actions roll back with the rest of this transaction.
        counted = Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING).update(
            **{name: F(name) + count for name, count in counts.items()}, updated_at=clock.now()
        )
        if not counted:
            transaction.set_rollback(True)
            return None
        BatchItem.objects.bulk_update(items, RESULT_FIELDS)
        return len(items)


def _outcome(batch: Batch, saga_id: Any) -> tuple[str, str, list[str], str]:
    """Return (item status, message, plan, saga status) of acting on one saga."""
    who: dict[str, Any] = (
        {"user": batch.created_by} if batch.created_by is not None else {"actor": batch.actor}
    )
    try:
        result = SERVICES[batch.action](
            saga_id=saga_id,
            reason=batch.reason,
            batch=batch.pk,
            **who,
            **_arguments(batch.action, batch.patch, batch.output, batch.target),
        )
    except (Conflict, InvalidInput, NotFound, PermissionDenied) as exc:
        return BatchItemStatus.REFUSED, str(exc), [], ""
    except SagaError as exc:
        return BatchItemStatus.FAILED, str(exc), [], ""
    except Exception as exc:
        # One saga's fault (its savepoint rolled back) must not stop the other 9,999.
        log.exception("batch %s: saga %s failed", batch.pk, saga_id)
        return BatchItemStatus.FAILED, f"{type(exc).__name__}: {exc}", [], ""
    return BatchItemStatus.DONE, "", result.describe(), str(result.saga.status)


def _finish(batch_id: int) -> None:
    now = clock.now()
    Batch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).update(
        status=BatchStatus.FINISHED, finished_at=now, updated_at=now
    )


def redrive_stalled() -> int:
    """Ring again for every open batch with no saga done for BPM_BATCH_REDRIVE_AFTER seconds."""
    cutoff = clock.now() - timedelta(seconds=settings.BPM_BATCH_REDRIVE_AFTER)
    stalled = list(
        Batch.objects.filter(
            status__in=(BatchStatus.PENDING, BatchStatus.RUNNING), updated_at__lt=cutoff
        ).values_list("id", flat=True)[:100]
    )
    for batch_id in stalled:
        # Moving the heartbeat stops the next sweeps ringing before this doorbell had its chance.
        Batch.objects.filter(pk=batch_id).update(updated_at=clock.now())
        dispatch.ring_batch_now(batch_id)
    return len(stalled)
