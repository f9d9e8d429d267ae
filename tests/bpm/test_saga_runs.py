from __future__ import annotations

import pytest
from django.db import transaction
from testkit import fresh, three_steps

from bpm import engine, services
from bpm.models import EventType, SagaInstance, SagaStatus, StepRun

pytestmark = pytest.mark.django_db(transaction=True)


def start(definition, **kwargs):
    return services.saga_start(definition=definition.name, input={}, actor="test", **kwargs)


def test_it_runs_every_step_in_order_and_completes(the_world, drained):
    saga = start(three_steps())
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert the_world.effects == [("a", "FORWARD"), ("b", "FORWARD"), ("c", "FORWARD")]
    assert set(fresh(saga).context) == {"a", "b", "c"}


def test_it_compensates_finished_steps_in_reverse_order_when_a_step_refuses(the_world, drained):
    the_world.will("c", "refuse:NO")
    saga = start(three_steps())
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    assert saga.failure["code"] == "NO"
    assert the_world.effects == [
        ("a", "FORWARD"),
        ("b", "FORWARD"),
        ("b", "COMPENSATION"),
        ("a", "COMPENSATION"),
    ]


def test_it_retries_a_transient_fault_and_records_each_attempt(the_world, drained):
    the_world.will("b", "fault", "fault")
    saga = start(three_steps())
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
    failed = saga.events.filter(type=EventType.ATTEMPT_FAILED)
    assert [(e.step_run.step.name, e.attempt) for e in failed] == [("b", 1), ("b", 2)]
    assert all("unreachable" in e.message for e in failed)


def test_the_same_runs_work_for_transactional_handlers(the_world, drained):
    the_world.will("c", "refuse:NO")
    saga = start(three_steps(handler="test.local"))
    drained()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    assert the_world.effects[-2:] == [("b", "COMPENSATION"), ("a", "COMPENSATION")]


def test_the_engines_locking_read_of_a_run_and_its_saga_equals_the_orms(the_world, drained):
    saga = start(three_steps())
    drained()
    run = StepRun.objects.filter(saga=saga).order_by("id").last()
    with transaction.atomic():
        read = engine._read_run_locking_saga(run.pk)
    assert read is not None
    got_run, got_saga = read
    for model, got, want in (
        (StepRun, got_run, StepRun.objects.get(pk=run.pk)),
        (SagaInstance, got_saga, SagaInstance.objects.get(pk=saga.pk)),
    ):
        for f in model._meta.concrete_fields:
            assert getattr(got, f.attname) == getattr(want, f.attname), f.name
    assert got_run.saga is got_saga
    with transaction.atomic():
        assert engine._read_run_locking_saga(run.pk + 10**6) is None
