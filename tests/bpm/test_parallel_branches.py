"""Parallel branches in the engine: steps that name their predecessors run at once, on real rows.

The threaded tests record two steps of one saga at the same moment: the saga's row lock must
serialise them and the second must see what the first wrote (no lost decision, no lost output).
"""

from __future__ import annotations

import threading
from typing import Any

import django_rq
import pytest
from django.conf import settings
from django.db import connection
from testkit import FAST, declare, fresh

from bpm import engine, registry, services
from bpm.context import StepContext
from bpm.declarations import PIVOT, RETRIABLE
from bpm.declarations import StepDeclaration as Step
from bpm.errors import DefinitionInvalid
from bpm.models import SagaEvent, SagaInstance, StepRun
from bpm.states import Direction, EventType, SagaStatus, StepStatus

pytestmark = pytest.mark.django_db(transaction=True)

COMP = Direction.COMPENSATION


class Gate:
    """Steps that wait for each other (a threading.Barrier) or for the test to open the gate."""

    def __init__(self) -> None:
        self.meet = threading.Barrier(2, timeout=10)
        self.open = threading.Event()
        self.refuse: set[str] = set()


gate = Gate()


@registry.handler("test.meet")
def meet(ctx: StepContext) -> dict[str, Any]:
    gate.meet.wait()
    return {"step": ctx.step}


@registry.handler("test.held")
def held(ctx: StepContext) -> dict[str, Any]:
    assert gate.open.wait(10), "the gate never opened"
    return {"step": ctx.step}


@pytest.fixture(autouse=True)
def _fresh_gate() -> None:
    gate.__init__()  # type: ignore[misc]


def diamond(name: str, handler: str = "test.remote", middle: str = "test.remote") -> None:
    """a → (b, c) → d, every step compensatable."""
    declare(
        name,
        Step("a", handler, handler, retry=FAST),
        Step("b", middle, handler, retry=FAST, after=["a"]),
        Step("c", middle, handler, retry=FAST, after=["a"]),
        Step("d", handler, handler, retry=FAST, after=["b", "c"]),
    )


def start(name: str) -> SagaInstance:
    return services.saga_start(definition=name, input={}, actor="test")


def events(saga: SagaInstance, type: str) -> list[SagaEvent]:
    return list(SagaEvent.objects.filter(saga=saga, type=type).select_related("step_run__step"))


def pending_runs(saga: SagaInstance) -> list[StepRun]:
    return list(
        StepRun.objects.filter(saga=saga, status=StepStatus.PENDING)
        .select_related("step")
        .order_by("id")
    )


def run_now(run: StepRun) -> None:
    engine.execute(run.id, str(run.token))


def test_steps_after_the_same_step_are_scheduled_together_and_all_outputs_land(the_world, drained):
    diamond("diamond_ok")
    saga = start("diamond_ok")
    [a] = pending_runs(saga)
    run_now(a)
    b, c = pending_runs(saga)
    assert (b.step.name, c.step.name) == ("b", "c")
    rung = [job.args[0] for job in django_rq.get_queue("default").get_jobs()]
    assert rung == [a.id, b.id, c.id]  # a's own doorbell (run by hand here), then one each
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPLETED
    assert set(saga.context) == {"a", "b", "c", "d"}
    assert the_world.calls[-1] == ("d", "FORWARD", 1)


def test_the_diamond_compensates_both_branches_at_once_then_the_first_step(the_world, drained):
    diamond("diamond_refused")
    the_world.will("d", "refuse:NO")
    saga = start("diamond_refused")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.COMPENSATED
    undone = [step for step, direction, _ in the_world.calls if direction == COMP]
    assert sorted(undone[:2]) == ["b", "c"] and undone[2:] == ["a"]
    scheduled = {
        e.step_run.step.name: e.id
        for e in events(saga, EventType.STEP_SCHEDULED)
        if e.step_run.direction == COMP
    }
    finished = {
        e.step_run.step.name: e.id
        for e in events(saga, EventType.STEP_SUCCEEDED)
        if e.step_run.direction == COMP
    }
    started = {
        e.step_run.step.name: e.id
        for e in events(saga, EventType.STEP_STARTED)
        if e.step_run.direction == COMP
    }
    # b's and c's compensations were both scheduled before either started, and a's only after
    # both had finished.
    assert max(scheduled["b"], scheduled["c"]) < min(started["b"], started["c"])
    assert scheduled["a"] > max(finished["b"], finished["c"])


def test_two_parallel_steps_recorded_at_the_same_moment_lose_no_decision(the_world):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL's row locks")
    diamond("diamond_race", middle="test.meet")
    for _ in range(3):
        saga = start("diamond_race")
        run_now(pending_runs(saga)[0])
        b, c = pending_runs(saga)
        errors: list[BaseException] = []

        def worker(run: StepRun, errors: list[BaseException] = errors) -> None:
            try:
                run_now(run)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(run,)) for run in (b, c)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert not errors
        saga = fresh(saga)
        assert {"b", "c"} <= set(saga.context), "both outputs merged into the context"
        runs = StepRun.objects.filter(saga=saga, step__name="d")
        assert runs.count() == 1, "d is scheduled once, by whichever recorded second"
        run_now(runs.get())
        assert fresh(saga).status == SagaStatus.COMPLETED


def test_a_refusal_lets_the_running_sibling_finish_then_compensates_it(the_world, drained):
    if connection.vendor != "postgresql":
        pytest.skip("a step running in another thread needs PostgreSQL")
    declare(
        "refused_sibling",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("b", "test.remote", "test.remote", retry=FAST, after=["a"]),
        Step("c", "test.held", "test.remote", retry=FAST, after=["a"]),
        Step("d", "test.remote", "test.remote", retry=FAST, after=["b", "c"]),
    )
    the_world.will("b", "refuse:NO")
    saga = start("refused_sibling")
    run_now(pending_runs(saga)[0])
    b, c = pending_runs(saga)
    sibling = threading.Thread(target=lambda: (run_now(c), connection.close()))
    sibling.start()
    try:
        for _ in range(200):  # until c is claimed (RUNNING) by the other thread
            if StepRun.objects.get(pk=c.pk).status == StepStatus.RUNNING:
                break
            threading.Event().wait(0.05)
        run_now(b)
        assert fresh(saga).status == SagaStatus.RUNNING, "c still runs: no compensation yet"
        assert not StepRun.objects.filter(saga=saga, direction=COMP).exists()
        assert not StepRun.objects.filter(saga=saga, step__name="d").exists()
    finally:
        gate.open.set()
        sibling.join(20)
    drained()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    undone = [step for step, direction, _ in the_world.calls if direction == COMP]
    assert undone == ["c", "a"]


def test_inline_continuation_takes_one_parallel_step_and_rings_the_other(the_world):
    declare(
        "fork_local",
        Step("a", "test.local", "test.local"),
        Step("b", "test.local", "test.local", after=["a"]),
        Step("c", "test.local", "test.local", after=["a"]),
    )
    saga = start("fork_local")
    [a] = pending_runs(saga)
    continuation = engine.execute(a.id, str(a.token), inline=True)
    assert continuation is not None
    b, c = pending_runs(saga)
    assert continuation.run_id == b.id
    assert [job.args[0] for job in django_rq.get_queue("default").get_jobs()] == [a.id, c.id]


def test_a_saga_that_starts_with_two_steps_schedules_both(the_world, drained):
    declare(
        "two_starts",
        Step("a", "test.remote", "test.remote", after=[]),
        Step("b", "test.remote", "test.remote", after=[]),
        Step("pay", "test.remote", kind=PIVOT, after=["a", "b"]),
        Step("mail", "test.remote", kind=RETRIABLE, after=["pay"]),
        Step("log", "test.remote", kind=RETRIABLE, after=["pay"]),
    )
    saga = start("two_starts")
    assert [run.step.name for run in pending_runs(saga)] == ["a", "b"]
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [Step("a", "test.remote", after=["b"]), Step("b", "test.remote", after=["a"])],
            "steps wait for each other in a cycle: 'a' → 'b' → 'a'",
        ),
        ([Step("a", "test.remote", after=["zz"])], "step 'a' runs after 'zz', which is not a step"),
        ([Step("a", "test.remote", after=["a"])], "step 'a' cannot run after itself"),
        (
            [Step("a", "test.remote"), Step("b", "test.remote", after=["a", "a"])],
            "step 'b' names 'a' twice in after",
        ),
        (
            [
                Step("a", "test.remote", "test.remote", after=[]),
                Step("b", "test.remote", "test.remote", after=[]),
                Step("p", "test.remote", kind=PIVOT, after=["a"]),
            ],
            "the pivot 'p' must run after every compensatable step, but does not wait for 'b'",
        ),
        (
            [
                Step("p", "test.remote", kind=PIVOT),
                Step("b", "test.remote", "test.remote", after=["p"]),
            ],
            "step 'b': steps after the pivot must be retriable",
        ),
    ],
)
def test_validation_refuses_what_cannot_run_and_names_the_steps(steps, message):
    with pytest.raises(DefinitionInvalid) as refused:
        declare("invalid_order", *steps)
    assert message in str(refused.value)


def test_after_must_be_a_list_of_names():
    with pytest.raises(DefinitionInvalid, match="after must be a list of step names"):
        Step("a", "test.remote", after="b")  # type: ignore[arg-type]


def test_a_linear_declaration_keeps_its_fingerprint_and_its_default_order():
    from bpm.declarations import SagaDeclaration

    plain = SagaDeclaration("x", "x", (Step("a", "test.remote"), Step("b", "test.remote")))
    explicit = SagaDeclaration(
        "x", "x", (Step("a", "test.remote", after=[]), Step("b", "test.remote", after=["a"]))
    )
    assert plain.fingerprint() != explicit.fingerprint()
    assert "after" not in str(plain.fingerprint.__doc__ or "")
    definition = declare("stored_after", *explicit.steps)
    assert [step.after for step in definition.steps.order_by("position")] == [[], ["a"]]
    assert settings.RQ_QUEUES


def test_two_parallel_steps_that_ran_out_stop_the_saga_and_one_retry_runs_both_again(
    the_world, drained
):
    declare(
        "two_tails",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("pay", "test.remote", kind=PIVOT, retry=FAST),
        Step("mail", "test.remote", kind=RETRIABLE, retry=FAST, after=["pay"]),
        Step("log", "test.remote", kind=RETRIABLE, retry=FAST, after=["pay"]),
    )
    the_world.will("mail", "fault", "fault", "fault")
    the_world.will("log", "fault", "fault", "fault")
    saga = start("two_tails")
    drained()
    saga = fresh(saga)
    assert (saga.status, saga.stuck_reason) == (SagaStatus.STUCK, "RETRIES_EXHAUSTED")
    preview = services.saga_retry(saga_id=saga.id, reason="back", actor="test", preview=True)
    assert preview.will_run == [("mail", "FORWARD"), ("log", "FORWARD")]
    services.saga_retry(saga_id=saga.id, reason="back", actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.COMPLETED
