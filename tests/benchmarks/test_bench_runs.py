"""The benchmark harness runs end to end and ends with its JSON line (behaviour, never timings)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from benchmarks import suite

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The keys docs/benchmarks.md and the engine's targets rely on.
REQUIRED = [
    "engine_vs_rq",
    "at_least_once_vs_rq",
    "queries_per_step",
    "round_trips_per_step",
    "commits_per_step",
    "latency_vs_rq",
    "two_workers_vs_one",
    "start_queries",
    "start_commits",
    "idle_sweep_queries",
    "due_sweep_queries",
    "due_sweep_redis_round_trips",
    "due_sweep_queries_per_run",
]

# The quick mode's shape with the smallest counts: every figure, real worker processes included.
TINY = dataclasses.replace(
    suite.QUICK,
    sagas=2,
    repeat=1,
    latency_samples=1,
    scaling_sagas=2,
    scaling_repeat=1,
    due_runs=3,
    whole_sagas=1,
    warm_up=False,
)


def test_a_run_prints_every_figure_and_ends_with_a_json_line_of_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = dataclasses.replace(TINY, log_dir=tmp_path)
    figures = suite.measure(options, progress=lambda line: None)
    print(suite.report(figures, options))

    lines = capsys.readouterr().out.strip().splitlines()
    last = json.loads(lines[-1])
    for key in REQUIRED:
        value = last[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
    assert last["due_sweeps_redriven"] == 3
    assert last["commits_per_step"] == 1
    for label, *_ in suite.ROWS:
        assert any(line.startswith(label) for line in lines), label
