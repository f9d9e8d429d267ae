"""A fault at every database statement of a wait's transitions: consuming a signal and recording
the step's output; expiring a wait and starting the compensation; completing a human task.

Each statement of the transition is made to fail in turn, as a dropped connection
(OperationalError) or as the process dying there (a BaseException nothing in the engine
catches), and the commit as well, before it reaches the database and after (its answer lost).
Whatever fails where, the transition is all or nothing, and repeating it (the sender retries,
the next sweep) finishes the saga with the step's output recorded once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import OperationalError, connections
from testkit import fresh, work
from waitkit import signal_saga, task_saga

from bpm import answers, clock, engine, services, sweeper
from bpm.errors import Conflict
from bpm.models import EventType, SagaStatus, Signal, StepRun, StepStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEFORE, AFTER = "before", "after"


class ProcessDied(BaseException):
    """Stands in for SIGKILL: no `except Exception` sees it."""


@dataclass
class Fault:
    """Fails the n-th statement of the window (a COMMIT counts, before or after it lands)."""

    index: int | None = None
    phase: str = BEFORE
    kind: type[BaseException] = OperationalError
    seen: list[str] = field(default_factory=list)
    fired: bool = False

    def reach(self, what: str, phase: str = BEFORE) -> None:
        if phase == BEFORE:
            self.seen.append(what)
        if self.fired or self.index is None:
            return
        if (len(self.seen), phase) == (self.index, self.phase):
            self.fired = True
            raise self.kind(f"failed at #{self.index} {what} ({phase})")


@pytest.fixture
def window() -> Iterator[Callable[[Fault, Callable[[], Any]], Any]]:
    """Return a runner of a call with a fault installed on the default connection."""
    connection = connections["default"]
    real_commit = connection._commit

    def run(fault: Fault, call: Callable[[], Any]) -> Any:
        def query(execute: Any, sql: str, params: Any, many: bool, ctx: Any) -> Any:
            fault.reach(sql.split()[0].upper())
            return execute(sql, params, many, ctx)

        def commit() -> None:
            try:
                fault.reach("COMMIT")
            except ProcessDied:
                connection._rollback()
                raise
            real_commit()
            fault.reach("COMMIT", AFTER)

        connection._commit = commit  # type: ignore[method-assign]
        try:
            with connection.execute_wrapper(query):
                return call()
        finally:
            connection._commit = real_commit  # type: ignore[method-assign]

    yield run


def points(dry: Fault) -> list[tuple[int, str]]:
    """Every place to fail up to the transition's commit: each statement before it runs, and the
    commit after it lands (a read after the commit failing is the same as the answer lost)."""
    assert "COMMIT" in dry.seen, dry.seen
    last = len(dry.seen) - dry.seen[::-1].index("COMMIT")
    return [(n, BEFORE) for n in range(1, last + 1)] + [(last, AFTER)]


def waiting_for_signal() -> Any:
    saga = services.saga_start(definition="signalled", input={}, actor="test")
    work()
    assert StepRun.objects.get(saga=saga, step__name="wait_go").status == StepStatus.WAITING
    return saga


def assert_finished_once(saga: Any, step: str, output: dict[str, Any]) -> None:
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context[step] == output
    assert saga.events.filter(type=EventType.STEP_SUCCEEDED, step_run__step__name=step).count() == 1


@pytest.mark.parametrize("kind", [OperationalError, ProcessDied], ids=["error", "death"])
def test_a_fault_anywhere_in_consuming_a_signal_leaves_it_all_or_nothing(the_world, window, kind):
    signal_saga()
    dry = Fault()
    saga = waiting_for_signal()
    window(dry, lambda: engine.receive_signal(saga.pk, "go", {"n": 0}, actor="test"))
    for index, phase in points(dry):
        saga = waiting_for_signal()
        fault = Fault(index, phase, kind)
        with pytest.raises(kind):
            window(fault, lambda s=saga: engine.receive_signal(s.pk, "go", {"n": 1}, actor="x"))
        connections["default"].close()
        run = StepRun.objects.get(saga=saga, step__name="wait_go")
        committed = phase == AFTER
        assert Signal.objects.filter(saga=saga).exists() is committed, (index, phase)
        assert run.status == (StepStatus.SUCCEEDED if committed else StepStatus.WAITING)
        # The sender retries: a duplicate when the first one committed, the signal otherwise.
        _, duplicate = engine.receive_signal(saga.pk, "go", {"n": 1}, actor="x")
        assert duplicate is committed
        work()
        sweeper.sweep_once()  # a doorbell lost with the answer is rung again
        clock.advance(60)
        sweeper.sweep_once()
        work()
        assert_finished_once(saga, "wait_go", {"n": 1})


@pytest.mark.parametrize("kind", [OperationalError, ProcessDied], ids=["error", "death"])
def test_a_fault_anywhere_in_expiring_a_wait_leaves_it_to_the_next_sweep(the_world, window, kind):
    signal_saga(timeout=10)

    def expired_wait() -> Any:
        saga = waiting_for_signal()
        clock.advance(11)
        return saga

    dry = Fault()
    saga = expired_wait()
    window(dry, lambda: sweeper.expire_waits())
    work()
    the_world.effects.clear()
    for index, phase in points(dry):
        saga = expired_wait()
        fault = Fault(index, phase, kind)
        with pytest.raises(kind):
            window(fault, lambda: sweeper.expire_waits())
        connections["default"].close()
        committed = phase == AFTER
        run = StepRun.objects.get(saga=saga, step__name="wait_go")
        assert run.status == (StepStatus.FAILED if committed else StepStatus.WAITING)
        assert (fresh(saga).status == SagaStatus.COMPENSATING) is committed
        # The next sweep expires what the first did not, and rings what it may have lost.
        clock.advance(60)
        sweeper.sweep_once()
        work()
        saga = fresh(saga)
        assert saga.status == SagaStatus.COMPENSATED, (index, phase)
        assert saga.events.filter(type=EventType.WAIT_TIMED_OUT).count() == 1
        assert the_world.effects.count(("a", "COMPENSATION")) == 1
        the_world.effects.clear()


def test_a_fault_anywhere_in_completing_a_task_lets_the_reviewer_try_again(the_world, window):
    task_saga()
    rita = User.objects.create_user("rita")
    rita.groups.add(Group.objects.get(name="reviewers"))

    def waiting_task() -> Any:
        saga = services.saga_start(definition="reviewed", input={}, actor="test")
        work()
        return saga, answers.tasks_for(rita).get(saga=saga)

    dry = Fault()
    saga, task = waiting_task()
    window(dry, lambda: answers.task_complete(task_id=task.pk, user=rita, data={"approved": True}))
    for index, phase in points(dry):
        saga, task = waiting_task()
        fault = Fault(index, phase, OperationalError)
        with pytest.raises(OperationalError):
            window(
                fault,
                lambda t=task: answers.task_complete(
                    task_id=t.pk, user=rita, data={"approved": True}
                ),
            )
        connections["default"].close()
        committed = phase == AFTER
        if committed:
            with pytest.raises(Conflict, match="closed"):
                answers.task_complete(task_id=task.pk, user=rita, data={"approved": True})
        else:
            answers.task_complete(task_id=task.pk, user=rita, data={"approved": True})
        clock.advance(60)
        sweeper.sweep_once()
        work()
        assert_finished_once(saga, "review", {"approved": True})
