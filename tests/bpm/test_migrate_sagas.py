"""Moving running and stuck sagas to another version of their definition, one or by batch."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from factories import UserFactory
from testkit import FAST, declare, drain, fresh, work

from bpm import batches, clock, definitions, services
from bpm.declarations import COMPENSATABLE, PIVOT, RETRIABLE
from bpm.declarations import StepDeclaration as Step
from bpm.errors import Conflict, InvalidInput, PermissionDenied
from bpm.models import (
    BatchItemStatus,
    BatchStatus,
    DefinitionStatus,
    EventType,
    SagaDefinition,
    SagaInstance,
    SagaStatus,
    StepRun,
    StepStatus,
)

pytestmark = pytest.mark.django_db(transaction=True)
NAME = "shipping"
STUCK_SHIPPINGS = {"status": "STUCK", "definition": NAME, "version": "1"}


def version_1() -> SagaDefinition:
    return declare(
        NAME,
        Step("book", "test.remote", kind=PIVOT, retry=FAST),
        Step("ship", "test.remote", kind=RETRIABLE, retry=FAST),
    )


def version_2() -> SagaDefinition:
    """Return v2: v1 with a `notify` step added after `ship`, and more attempts for `ship`."""
    return declare(
        NAME,
        Step("book", "test.remote", kind=PIVOT, retry=FAST),
        Step("ship", "test.remote", kind=RETRIABLE, retry=FAST),
        Step("notify", "test.remote", kind=RETRIABLE, retry=FAST),
    )


def stuck_on_ship(the_world, count: int) -> list[SagaInstance]:
    v1 = version_1()
    sagas = []
    for number in range(count):
        the_world.will("ship", "fault", "fault", "fault")
        sagas.append(services.saga_start(definition=NAME, input={"n": number}, actor="test"))
    drain()
    assert {fresh(saga).status for saga in sagas} == {SagaStatus.STUCK}
    assert all(fresh(saga).definition_id == v1.pk for saga in sagas)
    return sagas


@pytest.fixture
def operator():
    return UserFactory(username="olga", groups=["operators"])


def test_stuck_sagas_moved_by_a_batch_continue_on_the_new_version_once_retried(the_world, operator):
    sagas = stuck_on_ship(the_world, 3)
    v2 = version_2()
    preview = batches.batch_preview(
        query=STUCK_SHIPPINGS, action="migrate", target_version=2, user=operator
    )
    assert (preview.matched, preview.refusals) == (3, [])
    assert preview.plans == [(["move from v1 to v2", "run ship", "run notify"], 3)]

    batch = batches.batch_create(
        query=STUCK_SHIPPINGS,
        action="migrate",
        target_version=2,
        reason="v2 notifies the customer",
        user=operator,
    )
    assert batch.target == v2
    work()
    batch.refresh_from_db()
    assert (batch.status, batch.done, batch.refused, batch.failed) == (
        BatchStatus.FINISHED,
        3,
        0,
        0,
    )
    v2_steps = {step.name: step.pk for step in definitions.steps_of(v2.pk)}
    for saga in sagas:
        moved = fresh(saga)
        assert (moved.definition_id, moved.status) == (v2.pk, SagaStatus.STUCK)
        for run in StepRun.objects.filter(saga=saga).select_related("step"):
            assert run.step_id == v2_steps[run.step.name]
        event = moved.events.get(type=EventType.SAGA_MOVED)
        assert event.actor == "user:olga"
        assert event.message == "moved from version 1 to 2 by user:olga: v2 notifies the customer"
        assert event.data == {
            "from": 1,
            "to": 2,
            "reason": "v2 notifies the customer",
            "batch": batch.pk,
        }

    batches.batch_create(
        query={"status": "STUCK", "definition": NAME},
        action="retry",
        reason="the carrier is back",
        user=operator,
    )
    drain()
    for saga in sagas:
        assert fresh(saga).status == SagaStatus.COMPLETED
        assert fresh(saga).context.keys() == {"book", "ship", "notify"}
    assert [call[0] for call in the_world.calls].count("notify") == 3


def test_sagas_that_cannot_move_are_refused_with_their_reason_grouped_with_counts(
    the_world, operator
):
    sagas = stuck_on_ship(the_world, 3)
    services.saga_abort(saga_id=sagas[0].pk, reason="done by hand", actor="test")
    declare(
        NAME,
        Step("book", "test.remote", kind=PIVOT, retry=FAST),
        Step("deliver", "test.remote", kind=RETRIABLE, retry=FAST),
    )
    everything = {"definition": NAME, "version": "1"}
    preview = batches.batch_preview(
        query=everything, action="migrate", target_version=2, user=operator
    )
    assert preview.plans == []
    reasons = {why.split(": ", 1)[1]: count for why, count, _ in preview.refusals}
    assert reasons == {
        "step ship already ran but v2 has no step ship": 2,
        "it is ABORTED: only RUNNING or STUCK sagas move": 1,
    }
    batch = batches.batch_create(
        query=everything, action="migrate", target_version=2, reason="try", user=operator
    )
    work()
    batch.refresh_from_db()
    assert (batch.done, batch.refused) == (0, 3)
    assert set(batch.items.values_list("status", flat=True)) == {BatchItemStatus.REFUSED}
    assert all(fresh(saga).definition.version == 1 for saga in sagas)


def test_a_running_saga_between_steps_moves_and_its_waiting_step_runs_on_the_new_version(
    the_world,
):
    version_1()
    saga = services.saga_start(definition=NAME, input={}, actor="test")
    pending = StepRun.objects.get(saga=saga)
    old_token = pending.token
    v2 = version_2()
    result = services.saga_move(saga_id=saga.pk, target=v2, reason="upgrade", actor="ops")
    assert result.describe() == ["move from v1 to v2", "run book", "run ship", "run notify"]
    pending.refresh_from_db()
    assert pending.status == StepStatus.PENDING
    assert pending.token != old_token  # the doorbell rung for v1 is refused
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert [call[0] for call in the_world.calls] == ["book", "ship", "notify"]


def test_a_saga_with_a_step_in_flight_is_refused(the_world):
    version_1()
    saga = services.saga_start(definition=NAME, input={}, actor="test")
    run = StepRun.objects.get(saga=saga)
    StepRun.objects.filter(pk=run.pk).update(
        status=StepStatus.RUNNING,
        lease_owner=uuid.uuid4(),
        lease_expires_at=clock.now() + timedelta(seconds=30),
    )
    v2 = version_2()
    with pytest.raises(Conflict, match="step book is running on a worker"):
        services.saga_move(saga_id=saga.pk, target=v2, reason="upgrade", actor="ops")
    assert fresh(saga).definition.version == 1
    assert not fresh(saga).events.filter(type=EventType.SAGA_MOVED).exists()


def test_a_preview_changes_nothing_and_a_move_needs_a_reason(the_world):
    (saga,) = stuck_on_ship(the_world, 1)
    v2 = version_2()
    services.saga_move(saga_id=saga.pk, target=v2, preview=True, actor="ops")
    assert fresh(saga).definition.version == 1
    with pytest.raises(InvalidInput, match="a reason is required"):
        services.saga_move(saga_id=saga.pk, target=v2, reason="  ", actor="ops")


def test_a_move_to_a_draft_or_to_the_same_version_is_refused(the_world):
    (saga,) = stuck_on_ship(the_world, 1)
    v1 = fresh(saga).definition
    with pytest.raises(Conflict, match="it already runs shipping v1"):
        services.saga_move(saga_id=saga.pk, target=v1, reason="x", actor="ops")
    draft = version_2()
    SagaDefinition.objects.filter(pk=draft.pk).update(status=DefinitionStatus.DRAFT)
    draft.refresh_from_db()
    with pytest.raises(Conflict, match="shipping v2 is not published"):
        services.saga_move(saga_id=saga.pk, target=draft, reason="x", actor="ops")


def test_only_operators_move_sagas(the_world):
    (saga,) = stuck_on_ship(the_world, 1)
    v2 = version_2()
    for group in ("viewers", "clients", "designers"):
        user = UserFactory(groups=[group])
        with pytest.raises(PermissionDenied, match=r"bpm\.migrate_saga"):
            services.saga_move(saga_id=saga.pk, target=v2, reason="x", user=user)
        with pytest.raises(PermissionDenied):
            batches.batch_create(
                query=STUCK_SHIPPINGS,
                action="migrate",
                target_version=2,
                reason="x",
                user=user,
            )


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (5.0, "must be the version number to move to (a whole number), not 5.0"),
        ("5.0", "not '5.0'"),
        ("two", "not 'two'"),
        (True, "not True"),
        (None, "not nothing"),
        (-1, "not -1"),
        (9, "shipping has no version 9"),
    ],
)
def test_a_target_version_that_is_not_one_is_refused(the_world, operator, version, message):
    stuck_on_ship(the_world, 1)
    version_2()
    with pytest.raises(InvalidInput, match=re.escape(message)) as refused:
        batches.batch_create(
            query=STUCK_SHIPPINGS,
            action="migrate",
            target_version=version,
            reason="x",
            user=operator,
        )
    assert refused.value.path == "target_version"


def test_a_migrate_batch_needs_the_filter_to_name_the_definition(the_world, operator):
    stuck_on_ship(the_world, 1)
    with pytest.raises(InvalidInput, match="filter by its name"):
        batches.batch_create(
            query={"status": "STUCK"},
            action="migrate",
            target_version=2,
            reason="x",
            user=operator,
        )
    with pytest.raises(InvalidInput, match="only a migrate batch takes a target version"):
        batches.batch_create(
            query=STUCK_SHIPPINGS,
            action="retry",
            target_version=2,
            reason="x",
            user=operator,
        )


def test_a_saga_of_another_definition_is_refused(the_world):
    (saga,) = stuck_on_ship(the_world, 1)
    other = declare("returns", Step("book", "test.remote", kind=COMPENSATABLE, retry=FAST))
    with pytest.raises(Conflict, match="is a version of another definition"):
        services.saga_move(saga_id=saga.pk, target=other, reason="x", actor="ops")


def test_a_saga_moved_once_is_refused_a_second_time_and_the_first_move_stands(the_world):
    (saga,) = stuck_on_ship(the_world, 1)
    v2 = version_2()
    services.saga_move(saga_id=saga.pk, target=v2, reason="first", actor="ops")
    with pytest.raises(Conflict, match="it already runs shipping v2"):
        services.saga_move(saga_id=saga.pk, target=v2, reason="second", actor="ops")
    assert fresh(saga).events.filter(type=EventType.SAGA_MOVED).count() == 1


def test_a_saga_stuck_compensating_moves_and_compensates_on_the_new_version(the_world):
    declare(
        "undo",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("b", "test.remote", "test.remote", retry=FAST),
    )
    the_world.will("b", "refuse:NO")
    the_world.will("a", "fault", "fault", "fault", direction="COMPENSATION")
    saga = services.saga_start(definition="undo", input={}, actor="test")
    drain()
    assert (fresh(saga).status, fresh(saga).stuck_direction) == (SagaStatus.STUCK, "COMPENSATION")
    v2 = declare(
        "undo",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("b", "test.remote", "test.remote", retry=FAST),
        Step("c", "test.remote", "test.remote", retry=FAST),
    )
    result = services.saga_move(saga_id=saga.pk, target=v2, reason="v2", actor="ops")
    assert result.describe() == ["move from v1 to v2", "compensate a"]
    services.saga_retry(saga_id=saga.pk, reason="compensate again", actor="ops")
    drain()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    assert fresh(saga).definition_id == v2.pk
