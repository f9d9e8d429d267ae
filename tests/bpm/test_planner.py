"""The planner, exhaustively: every saga shape up to four steps, every combination of run states."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from bpm.planner import Move, RunState, StepSpec, decide, remaining, steps_to_compensate
from bpm.states import FailureKind, SagaStatus, StepKind, StepStatus, StuckReason

FORWARD, COMPENSATION = "FORWARD", "COMPENSATION"
RUN_STATES = [
    None,
    RunState(StepStatus.PENDING),
    RunState(StepStatus.RUNNING),
    RunState(StepStatus.SUCCEEDED),
    RunState(StepStatus.SKIPPED),
    RunState(StepStatus.CANCELLED),
    RunState(StepStatus.FAILED, FailureKind.REFUSED),
    RunState(StepStatus.FAILED, FailureKind.EXHAUSTED),
]


def shapes(max_steps: int = 4):
    """Every valid saga shape: compensatable steps, at most one pivot, retriable ones after it."""
    for n in range(1, max_steps + 1):
        for pivot_at in [None, *range(n)]:
            kinds = [
                StepKind.COMPENSATABLE
                if pivot_at is None or i < pivot_at
                else StepKind.PIVOT
                if i == pivot_at
                else StepKind.RETRIABLE
                for i in range(n)
            ]
            for comps in itertools.product([True, False], repeat=n):
                yield [
                    StepSpec(f"s{i}", kind, comp and kind != StepKind.RETRIABLE)
                    for i, (kind, comp) in enumerate(zip(kinds, comps, strict=True))
                ]


def forward_histories(steps):
    """Every reachable forward history: a prefix done, then at most one step in any state."""
    for done in range(len(steps) + 1):
        for finish in itertools.product(
            [RunState(StepStatus.SUCCEEDED), RunState(StepStatus.SKIPPED)], repeat=done
        ):
            runs = {(steps[i].name, FORWARD): finish[i] for i in range(done)}
            yield dict(runs)
            if done < len(steps):
                for state in RUN_STATES[1:]:
                    yield {**runs, (steps[done].name, FORWARD): state}


def test_going_forward_it_runs_the_first_unfinished_step_or_completes():
    for steps in shapes():
        for runs in forward_histories(steps):
            decision = decide(steps, SagaStatus.RUNNING, runs)
            unfinished = [
                s
                for s in steps
                if runs.get((s.name, FORWARD), RunState("")).status
                not in (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
            ]
            if not unfinished:
                assert decision.move == Move.COMPLETE
                continue
            first = unfinished[0]
            state = runs.get((first.name, FORWARD))
            assert decision.step == first.name
            if state is None or state.status == StepStatus.CANCELLED:
                assert decision.move == Move.RUN
            elif state.status in (StepStatus.PENDING, StepStatus.RUNNING):
                assert decision.move == Move.WAIT
            elif first.kind == StepKind.RETRIABLE:
                assert decision.move == Move.STUCK
                assert decision.reason in (
                    StuckReason.RETRIES_EXHAUSTED,
                    StuckReason.REFUSED_AFTER_PIVOT,
                )
            else:
                assert decision.move == Move.COMPENSATE


def test_compensation_undoes_finished_steps_newest_first_and_nothing_else():
    for steps in shapes():
        for runs in forward_histories(steps):
            if decide(steps, SagaStatus.RUNNING, runs).move != Move.COMPENSATE:
                continue
            plan = remaining(steps, SagaStatus.COMPENSATING, runs)
            undone = [step for step, _ in plan]
            assert all(direction == COMPENSATION for _, direction in plan)
            expected = [
                s.name
                for s in steps
                if s.has_compensation
                and runs.get((s.name, FORWARD))
                in (
                    RunState(StepStatus.SUCCEEDED),
                    RunState(StepStatus.FAILED, FailureKind.EXHAUSTED),
                )
            ]
            assert undone == list(reversed(expected))
            assert not any(s.kind == StepKind.RETRIABLE for s in steps if s.name in undone)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_failed_compensation_sticks_and_every_other_state_waits_runs_or_finishes(data):
    steps = data.draw(st.sampled_from(list(shapes(3))))
    runs = {(s.name, FORWARD): RunState(StepStatus.SUCCEEDED) for s in steps}
    undo = steps_to_compensate(steps, runs)
    for step in undo:
        runs[(step.name, COMPENSATION)] = data.draw(st.sampled_from(RUN_STATES))
    decision = decide(steps, SagaStatus.COMPENSATING, runs)
    pending = [
        s
        for s in reversed(undo)
        if runs[(s.name, COMPENSATION)] is None
        or runs[(s.name, COMPENSATION)].status not in (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
    ]
    if not pending:
        assert decision.move == Move.COMPENSATED
        return
    newest = pending[0]
    assert decision.step == newest.name and decision.direction == COMPENSATION
    state = runs[(newest.name, COMPENSATION)]
    if state is not None and state.status == StepStatus.FAILED:
        assert (decision.move, decision.reason) == (Move.STUCK, StuckReason.COMPENSATION_FAILED)
    elif state is not None and state.status in (StepStatus.PENDING, StepStatus.RUNNING):
        assert decision.move == Move.WAIT
    else:
        assert decision.move == Move.RUN


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_any_run_of_outcomes_ends_completed_compensated_or_stuck(data):
    steps = data.draw(st.sampled_from(list(shapes(4))))
    runs: dict = {}
    status = SagaStatus.RUNNING
    for _ in range(4 * len(steps) + 2):
        decision = decide(steps, status, runs)
        if decision.move == Move.RUN:
            runs[(decision.step, decision.direction)] = data.draw(
                st.sampled_from(
                    [RUN_STATES[3], RUN_STATES[4], *RUN_STATES[6:]]
                    if decision.direction == FORWARD
                    else [
                        RunState(StepStatus.SUCCEEDED),
                        RunState(StepStatus.FAILED, FailureKind.EXHAUSTED),
                    ]
                )
            )
        elif decision.move == Move.COMPENSATE:
            status = SagaStatus.COMPENSATING
        else:
            assert decision.move in (Move.COMPLETE, Move.COMPENSATED, Move.STUCK)
            if decision.move == Move.COMPLETE:
                assert status == SagaStatus.RUNNING
            return
    raise AssertionError("the planner did not reach an end")


def test_a_finished_or_stuck_saga_has_no_next_move():
    steps = [StepSpec("a", StepKind.COMPENSATABLE, True)]
    for status in (
        SagaStatus.COMPLETED,
        SagaStatus.COMPENSATED,
        SagaStatus.STUCK,
        SagaStatus.ABORTED,
    ):
        assert decide(steps, status, {}).move == Move.NOTHING
