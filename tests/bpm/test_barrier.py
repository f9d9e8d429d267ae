from __future__ import annotations

import pytest
from testkit import declare, fresh, work

from bpm import barrier, engine, services
from bpm.declarations import RetryPolicy
from bpm.declarations import StepDeclaration as Step
from bpm.models import Direction, EventType, SagaStatus, StepRun

pytestmark = pytest.mark.django_db(transaction=True)

ONCE = RetryPolicy(max_attempts=1)


def local_saga():
    return declare(
        "local_pair",
        Step("first", "test.local", "test.local", retry=ONCE),
        Step("second", "test.local", "test.local", retry=ONCE),
    )


def test_a_compensation_whose_action_never_committed_is_a_recorded_no_op(the_world, drained):
    local_saga()
    the_world.will("second", "fault")  # no retries: the action exhausts without committing
    saga = services.saga_start(definition="local_pair", input={}, actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    assert ("second", "COMPENSATION", 1) not in the_world.calls
    null = saga.events.get(type=EventType.NULL_COMPENSATION)
    assert null.step_run.step.name == "second"
    assert the_world.effects == [("first", "FORWARD"), ("first", "COMPENSATION")]


def test_an_action_arriving_after_its_compensation_is_refused(the_world):
    definition = declare(
        "local_hanging",
        Step("first", "test.local", "test.local", retry=RetryPolicy(max_attempts=3)),
        Step("second", "test.local", "test.local", retry=ONCE),
    )
    the_world.will("second", "fault")
    the_world.will("first", "fault", direction="COMPENSATION")  # keeps the saga compensating
    saga = services.saga_start(definition="local_hanging", input={}, actor="test")
    work()
    assert fresh(saga).status == SagaStatus.COMPENSATING
    calls = len(the_world.calls)
    late = StepRun.objects.create(
        saga=saga, step=definition.steps.get(name="second"), direction=Direction.FORWARD
    )
    engine.execute(late.id, str(late.token))
    assert len(the_world.calls) == calls
    assert saga.events.filter(type=EventType.HANGING_REFUSED, step_run=late).exists()
    assert StepRun.objects.get(pk=late.pk).status == "FAILED"


def test_the_barrier_lets_each_operation_through_once(the_world, drained):
    local_saga()
    saga = services.saga_start(definition="local_pair", input={}, actor="test")
    assert barrier.enter(saga, "x", Direction.FORWARD) is barrier.Verdict.RUN
    assert barrier.enter(saga, "x", Direction.FORWARD) is barrier.Verdict.DUPLICATE
    assert barrier.enter(saga, "x", Direction.COMPENSATION) is barrier.Verdict.RUN
    assert barrier.enter(saga, "x", Direction.COMPENSATION) is barrier.Verdict.DUPLICATE
    assert barrier.enter(saga, "y", Direction.COMPENSATION) is barrier.Verdict.NULL_COMPENSATION
    assert barrier.enter(saga, "y", Direction.FORWARD) is barrier.Verdict.HANGING
