"""The planner on parallel branches: every DAG of up to four steps, every run state that can occur.

The linear shapes are checked against the old one-step-at-a-time rules in test_planner.py; here
every step names its predecessors (`after`), and the planner must start every ready step, start
nothing after a failure, let what is in flight finish, and undo steps in reverse dependency order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpm import graph
from bpm.planner import Decision, Move, RunState, StepSpec, decide, remaining, steps_to_compensate
from bpm.states import FailureKind, SagaStatus, StepKind, StepStatus, StuckReason

FORWARD, COMPENSATION = "FORWARD", "COMPENSATION"
DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
IN_FLIGHT = (StepStatus.PENDING, StepStatus.RUNNING)
SUCCEEDED = RunState(StepStatus.SUCCEEDED)
REFUSED = RunState(StepStatus.FAILED, FailureKind.REFUSED)
EXHAUSTED = RunState(StepStatus.FAILED, FailureKind.EXHAUSTED)
RUN_STATES = [
    None,
    RunState(StepStatus.PENDING),
    RunState(StepStatus.RUNNING),
    SUCCEEDED,
    RunState(StepStatus.SKIPPED),
    RunState(StepStatus.CANCELLED),
    REFUSED,
    EXHAUSTED,
]
KINDS = (StepKind.COMPENSATABLE, StepKind.PIVOT, StepKind.RETRIABLE)


def dags(n: int) -> Iterator[dict[str, tuple[str, ...]]]:
    """Every DAG on n steps listed in a topological order (each names only earlier steps)."""
    names = [f"s{i}" for i in range(n)]
    choices = [list(itertools.product([False, True], repeat=i)) for i in range(n)]
    for picks in itertools.product(*choices):
        yield {
            names[i]: tuple(names[j] for j, on in enumerate(pick) if on)
            for i, pick in enumerate(picks)
        }


def kinds_valid(dag: graph.Graph, kinds: dict[str, str]) -> bool:
    """At most one pivot, after every compensatable step; what follows it is retriable."""
    pivots = [name for name, kind in kinds.items() if kind == StepKind.PIVOT]
    if len(pivots) > 1:
        return False
    for pivot in pivots:
        before = graph.ancestors(dag, pivot)
        if any(k == StepKind.COMPENSATABLE and n not in before for n, k in kinds.items()):
            return False
        if any(kinds[n] != StepKind.RETRIABLE for n in graph.descendants(dag, pivot)):
            return False
    return True


def shapes(max_steps: int = 4, *, compensations: bool = False) -> Iterator[list[StepSpec]]:
    """Every DAG of up to max_steps with every valid assignment of kinds (and compensations)."""
    for n in range(1, max_steps + 1):
        for dag in dags(n):
            for kinds in itertools.product(KINDS, repeat=n):
                by_name = dict(zip(dag, kinds, strict=True))
                if not kinds_valid(dag, by_name):
                    continue
                comps = itertools.product([True, False], repeat=n) if compensations else [None]
                for comp in comps:
                    yield [
                        StepSpec(
                            name,
                            kind,
                            kind != StepKind.RETRIABLE and (comp is None or comp[i]),
                            dag[name],
                        )
                        for i, (name, kind) in enumerate(by_name.items())
                    ]


def forward_states(steps: list[StepSpec], states: list = RUN_STATES) -> Iterator[dict]:
    """Every forward history that can occur: a step has a run once its predecessors are done."""

    def extend(i: int, runs: dict) -> Iterator[dict]:
        if i == len(steps):
            yield dict(runs)
            return
        step = steps[i]
        ready = all(
            runs.get((b, FORWARD)) is not None and runs[(b, FORWARD)].status in DONE
            for b in step.after or ()
        )
        for state in states if ready else [None]:
            if state is not None:
                runs[(step.name, FORWARD)] = state
            yield from extend(i + 1, runs)
            runs.pop((step.name, FORWARD), None)

    yield from extend(0, {})


def status(runs: dict, name: str, direction: str = FORWARD) -> str:
    run = runs.get((name, direction))
    return run.status if run is not None else ""


# Four steps make 1,752 shapes and 819,758 histories (~30 s): that pass runs with the slow tests.
EVERY_SIZE = [3, pytest.param(4, marks=pytest.mark.slow)]


@pytest.mark.parametrize("max_steps", EVERY_SIZE)
def test_going_forward_every_ready_step_starts_and_nothing_new_after_a_failure(max_steps):
    checked = 0
    for steps in shapes(max_steps):
        for runs in forward_states(steps):
            checked += 1
            decision = decide(steps, SagaStatus.RUNNING, runs)
            names = [s.name for s in steps]
            failed = [n for n in names if status(runs, n) == StepStatus.FAILED]
            in_flight = [n for n in names if status(runs, n) in IN_FLIGHT]
            ready = [
                s.name
                for s in steps
                if status(runs, s.name) in ("", StepStatus.CANCELLED)
                and all(status(runs, b) in DONE for b in s.after or ())
            ]
            if failed and in_flight:
                assert decision == Decision(Move.WAIT, direction=FORWARD, steps=tuple(in_flight))
            elif failed:
                kinds = {s.name: s.kind for s in steps}
                turning = [n for n in failed if kinds[n] != StepKind.RETRIABLE]
                if turning:
                    assert decision == Decision(Move.COMPENSATE, turning[0], FORWARD)
                else:
                    assert decision.move == Move.STUCK and decision.step == failed[0]
                    assert decision.reason == (
                        StuckReason.REFUSED_AFTER_PIVOT
                        if runs[(failed[0], FORWARD)] == REFUSED
                        else StuckReason.RETRIES_EXHAUSTED
                    )
            elif ready:
                assert decision == Decision(Move.RUN, direction=FORWARD, steps=tuple(ready))
            elif in_flight:
                assert decision == Decision(Move.WAIT, direction=FORWARD, steps=tuple(in_flight))
            else:
                assert all(status(runs, n) in DONE for n in names)
                assert decision.move == Move.COMPLETE
    assert checked > (100_000 if max_steps == 4 else 1_000)


def compensation_states(
    steps: list[StepSpec], forward: dict, states: list = RUN_STATES
) -> Iterator[dict]:
    """Every compensation history that can occur for these forward runs: a step is undone only
    once every step that waited for it is undone."""
    undo = steps_to_compensate(steps, forward)
    names = {s.name for s in undo}
    dag = {s.name: s.after or () for s in steps}

    def extend(i: int, runs: dict) -> Iterator[dict]:
        if i < 0:
            yield dict(runs)
            return
        step = undo[i]
        after_me = graph.descendants(dag, step.name) & names
        ready = all(status(runs, d, COMPENSATION) in DONE for d in after_me)
        for state in states if ready else [None]:
            if state is not None and state.failure_kind == FailureKind.REFUSED:
                continue  # a compensation is never refused: it fails only by running out
            if state is not None:
                runs[(step.name, COMPENSATION)] = state
            yield from extend(i - 1, runs)
            runs.pop((step.name, COMPENSATION), None)

    yield from extend(len(undo) - 1, dict(forward))


# One state of each kind the planner tells apart (PENDING acts as RUNNING, SKIPPED as SUCCEEDED,
# CANCELLED as no run), for the four-step compensation pass.
REPRESENTATIVES = [None, RunState(StepStatus.RUNNING), SUCCEEDED, REFUSED, EXHAUSTED]


def finished_forward(steps: list[StepSpec], states: list = RUN_STATES) -> Iterator[dict]:
    """Forward histories a compensation starts from: nothing in flight, a step before the pivot
    failed."""
    settled = [s for s in states if s is None or s.status not in IN_FLIGHT]
    for runs in forward_states(steps, settled):
        if decide(steps, SagaStatus.RUNNING, runs).move == Move.COMPENSATE:
            yield runs


@pytest.mark.parametrize(
    ("max_steps", "compensations", "states"),
    [
        (2, True, RUN_STATES),
        pytest.param(3, True, RUN_STATES, marks=pytest.mark.slow),
        # Four steps, every step before the pivot with a compensation, one state of each kind.
        pytest.param(4, False, REPRESENTATIVES, marks=pytest.mark.slow),
    ],
)
def test_compensation_undoes_a_step_only_after_every_step_that_waited_for_it(
    max_steps, compensations, states
):
    checked = 0
    for steps in shapes(max_steps, compensations=compensations):
        dag = {s.name: s.after or () for s in steps}
        for forward in finished_forward(steps, states):
            undo = [s.name for s in steps_to_compensate(steps, forward)]
            for runs in compensation_states(steps, forward, states):
                checked += 1
                decision = decide(steps, SagaStatus.COMPENSATING, runs)
                undone = {n for n in undo if status(runs, n, COMPENSATION) in DONE}
                frontier = [
                    n
                    for n in reversed(undo)
                    if n not in undone and graph.descendants(dag, n) & set(undo) <= undone
                ]
                in_flight = [n for n in frontier if status(runs, n, COMPENSATION) in IN_FLIGHT]
                failed = [n for n in frontier if status(runs, n, COMPENSATION) == StepStatus.FAILED]
                ready = [
                    n
                    for n in frontier
                    if status(runs, n, COMPENSATION) in ("", StepStatus.CANCELLED)
                ]
                if not frontier:
                    assert decision.move == Move.COMPENSATED
                elif failed and not in_flight:
                    assert decision == Decision(
                        Move.STUCK, failed[0], COMPENSATION, StuckReason.COMPENSATION_FAILED
                    )
                elif failed or not ready:
                    assert decision == Decision(
                        Move.WAIT, direction=COMPENSATION, steps=tuple(in_flight)
                    )
                else:
                    assert decision == Decision(
                        Move.RUN, direction=COMPENSATION, steps=tuple(ready)
                    )
                for name in decision.steps if decision.move == Move.RUN else ():
                    assert name in undo
                    assert graph.descendants(dag, name) & set(undo) <= undone
    assert checked > (500 if max_steps > 2 else 50)


def test_the_diamond_undoes_both_branches_at_once_then_the_first_step():
    steps = [
        StepSpec("a", StepKind.COMPENSATABLE, True, ()),
        StepSpec("b", StepKind.COMPENSATABLE, True, ("a",)),
        StepSpec("c", StepKind.COMPENSATABLE, True, ("a",)),
        StepSpec("d", StepKind.COMPENSATABLE, True, ("b", "c")),
    ]
    assert decide(steps, SagaStatus.RUNNING, {}).steps == ("a",)
    runs: dict = {("a", FORWARD): SUCCEEDED}
    assert decide(steps, SagaStatus.RUNNING, runs).steps == ("b", "c")
    runs |= {("b", FORWARD): SUCCEEDED, ("c", FORWARD): SUCCEEDED, ("d", FORWARD): REFUSED}
    assert decide(steps, SagaStatus.RUNNING, runs) == Decision(Move.COMPENSATE, "d", FORWARD)
    first = decide(steps, SagaStatus.COMPENSATING, runs)
    assert (first.move, first.direction, set(first.steps)) == (Move.RUN, COMPENSATION, {"b", "c"})
    runs[("b", COMPENSATION)] = SUCCEEDED
    runs[("c", COMPENSATION)] = RunState(StepStatus.RUNNING)
    assert decide(steps, SagaStatus.COMPENSATING, runs).move == Move.WAIT
    runs[("c", COMPENSATION)] = SUCCEEDED
    assert decide(steps, SagaStatus.COMPENSATING, runs).steps == ("a",)
    assert remaining(steps, SagaStatus.RUNNING, {("a", FORWARD): SUCCEEDED}) == [
        ("b", FORWARD),
        ("c", FORWARD),
        ("d", FORWARD),
    ]


def test_a_refusal_lets_the_running_sibling_finish_before_turning_back():
    steps = [
        StepSpec("a", StepKind.COMPENSATABLE, True, ()),
        StepSpec("b", StepKind.COMPENSATABLE, True, ()),
        StepSpec("c", StepKind.COMPENSATABLE, True, ("a", "b")),
    ]
    runs = {("a", FORWARD): REFUSED, ("b", FORWARD): RunState(StepStatus.RUNNING)}
    assert decide(steps, SagaStatus.RUNNING, runs) == Decision(
        Move.WAIT, direction=FORWARD, steps=("b",)
    )
    runs[("b", FORWARD)] = SUCCEEDED
    assert decide(steps, SagaStatus.RUNNING, runs) == Decision(Move.COMPENSATE, "a", FORWARD)
    assert decide(steps, SagaStatus.COMPENSATING, runs).steps == ("b",)


# --- properties on random DAGs and random interleavings of outcomes ---------------------------


@st.composite
def dag_sagas(draw: st.DrawFn, max_steps: int = 6) -> list[StepSpec]:
    n = draw(st.integers(1, max_steps))
    names = [f"s{i}" for i in range(n)]
    dag = {name: tuple(b for b in names[:i] if draw(st.booleans())) for i, name in enumerate(names)}
    while True:
        kinds = {name: draw(st.sampled_from(KINDS)) for name in names}
        if kinds_valid(dag, kinds):
            break
    return [
        StepSpec(
            name, kinds[name], kinds[name] != StepKind.RETRIABLE and draw(st.booleans()), dag[name]
        )
        for name in names
    ]


@settings(max_examples=400, deadline=None)
@given(steps=dag_sagas(), data=st.data())
def test_any_interleaving_respects_the_order_and_ends(steps, data):
    dag = {s.name: s.after or () for s in steps}
    runs: dict = {}
    in_flight: list[tuple[str, str]] = []
    saga = SagaStatus.RUNNING
    for _ in range(10 * len(steps) + 10):
        decision = decide(steps, saga, runs)
        forward_failed = any(status(runs, s.name) == StepStatus.FAILED for s in steps)
        match decision.move:
            case Move.RUN:
                for name in decision.steps:
                    key = (name, decision.direction)
                    assert key not in in_flight, "a run in flight is never started again"
                    if decision.direction == FORWARD:
                        assert saga == SagaStatus.RUNNING
                        assert not forward_failed, "no forward step starts after a failure"
                        assert all(status(runs, b) in DONE for b in dag[name])
                    else:
                        undo = {s.name for s in steps_to_compensate(steps, runs)}
                        assert name in undo
                        for later in graph.descendants(dag, name) & undo:
                            assert status(runs, later, COMPENSATION) in DONE
                    runs[key] = RunState(StepStatus.PENDING)
                    in_flight.append(key)
            case Move.WAIT:
                assert in_flight
                finished = data.draw(st.sampled_from(in_flight))
                in_flight.remove(finished)
                outcomes = (
                    [SUCCEEDED, RunState(StepStatus.SKIPPED), REFUSED, EXHAUSTED]
                    if finished[1] == FORWARD
                    else [SUCCEEDED, EXHAUSTED]
                )
                runs[finished] = data.draw(st.sampled_from(outcomes))
            case Move.COMPENSATE:
                assert not in_flight, "compensation waits for the siblings in flight"
                saga = SagaStatus.COMPENSATING
            case Move.COMPLETE:
                assert saga == SagaStatus.RUNNING and not in_flight
                assert all(status(runs, s.name) in DONE for s in steps)
                return
            case Move.COMPENSATED:
                assert not in_flight
                for step in steps_to_compensate(steps, runs):
                    assert status(runs, step.name, COMPENSATION) in DONE
                return
            case Move.STUCK:
                assert not in_flight, "a saga stops only once nothing is in flight"
                return
    raise AssertionError("the planner did not reach an end")


@settings(max_examples=200, deadline=None)
@given(steps=dag_sagas(), data=st.data())
def test_remaining_lists_every_step_once_in_an_order_that_respects_after(steps, data):
    plan = remaining(steps, SagaStatus.RUNNING, {})
    assert sorted(name for name, _ in plan) == sorted(s.name for s in steps)
    position = {name: i for i, (name, _) in enumerate(plan)}
    for step in steps:
        for before in step.after or ():
            assert position[before] < position[step.name]
