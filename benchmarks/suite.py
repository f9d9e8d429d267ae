"""Every figure of the engine's benchmark contract, measured in one run with its baseline."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from benchmarks import costs, handlers, processes, throughput


@dataclass(frozen=True)
class Options:
    sagas: int = 200  # sagas of 4 steps per in-process throughput figure
    repeat: int = 3  # runs of each throughput figure; the medians are reported
    latency_samples: int = 30
    scaling_sagas: int = 150  # sagas per run with 1 and with 2 worker processes
    scaling_repeat: int = 3
    due_runs: int = 10_000
    whole_sagas: int = 10  # sagas run in one burst for the whole-saga cost per step
    warm_up: bool = True  # run a few jobs and sagas first, uncounted
    log_dir: Path = Path("var/bench/logs")


QUICK = Options(
    sagas=50, repeat=3, latency_samples=10, scaling_sagas=40, scaling_repeat=1, due_runs=2_000
)


def median_of(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def measure_throughput(options: Options) -> dict[str, float]:
    """In-process SimpleWorker figures; each ratio is the median of the per-run ratios."""
    if options.warm_up:
        # Not counted: the first jobs of a process pay for imports and new connections.
        throughput.rq_jobs_per_second(20)
        throughput.steps_per_second(handlers.TRANSACTIONAL, 5, inline=False)
    runs = []
    for _ in range(options.repeat):
        steps = options.sagas * handlers.STEPS
        rq = throughput.rq_jobs_per_second(steps)
        run = {
            "rq_jobs_per_s": rq,
            "commits_per_s": throughput.commits_per_second(steps),
            "engine_steps_per_s": throughput.steps_per_second(
                handlers.TRANSACTIONAL, options.sagas
            ),
            "engine_no_inline_steps_per_s": throughput.steps_per_second(
                handlers.TRANSACTIONAL, options.sagas, inline=False
            ),
            "at_least_once_steps_per_s": throughput.steps_per_second(
                handlers.AT_LEAST_ONCE, options.sagas
            ),
        }
        run["engine_vs_rq"] = run["engine_steps_per_s"] / rq
        run["engine_no_inline_vs_rq"] = run["engine_no_inline_steps_per_s"] / rq
        run["at_least_once_vs_rq"] = run["at_least_once_steps_per_s"] / rq
        runs.append(run)
    return {key: median_of(runs, key) for key in runs[0]}


def measure_costs(options: Options) -> dict[str, float]:
    step = costs.step_cost(options.whole_sagas)
    start = costs.start_cost()
    idle = costs.idle_sweep_cost()
    due = costs.due_sweep_cost(options.due_runs)
    return {
        "queries_per_step": step.marginal.queries,
        "round_trips_per_step": step.marginal.round_trips,
        "commits_per_step": step.marginal.commits,
        "queries_per_step_whole_saga": step.whole_saga.queries / step.steps,
        "commits_per_step_whole_saga": step.whole_saga.commits / step.steps,
        "redis_round_trips_per_step_whole_saga": step.whole_saga.redis_round_trips / step.steps,
        "start_queries": start.queries,
        "start_commits": start.commits,
        "start_redis_round_trips": start.redis_round_trips,
        "idle_sweep_queries": idle.queries,
        "idle_sweep_commits": idle.commits,
        "idle_sweep_redis_round_trips": idle.redis_round_trips,
        "due_sweep_runs": due.runs,
        "due_sweep_queries": due.first.queries,
        "due_sweep_commits": due.first.commits,
        "due_sweep_redis_round_trips": due.first.redis_round_trips,
        "due_sweep_redis_commands": due.first.redis_commands,
        "due_sweep_redriven": due.first_redriven,
        "due_sweep_queries_per_run": due.first.queries / max(due.first_redriven, 1),
        "due_sweep_redis_round_trips_per_run": (
            due.first.redis_round_trips / max(due.first_redriven, 1)
        ),
        "due_sweeps_until_idle": due.sweeps,
        "due_sweeps_redriven": due.redriven,
    }


def measure_processes(options: Options) -> dict[str, float]:
    real = processes.measure(
        samples=options.latency_samples,
        sagas=options.scaling_sagas,
        repeat=options.scaling_repeat,
        log_dir=options.log_dir,
    )
    runs = real.scaling
    return {
        "latency_vs_rq": real.saga_p50 / real.rq_p50,
        "saga_p50_ms": real.saga_p50 * 1000,
        "rq_p50_ms": real.rq_p50 * 1000,
        "two_workers_vs_one": statistics.median(r.engine_two / r.engine_one for r in runs),
        "engine_steps_per_s_1_worker": statistics.median(r.engine_one for r in runs),
        "engine_steps_per_s_2_workers": statistics.median(r.engine_two for r in runs),
        "rq_two_workers_vs_one": statistics.median(r.rq_two / r.rq_one for r in runs),
        "rq_jobs_per_s_1_worker": statistics.median(r.rq_one for r in runs),
        "rq_jobs_per_s_2_workers": statistics.median(r.rq_two for r in runs),
    }


def measure(options: Options, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every figure; return them by the names of the JSON line."""
    handlers.declare_all()
    started = time.monotonic()
    figures: dict[str, Any] = {"database": connection.vendor, "redis": settings.REDIS_URL}
    for name, part in (
        ("counted costs", measure_costs),
        ("in-process throughput", measure_throughput),
        ("real worker processes", measure_processes),
    ):
        progress(f"measuring {name}... ({time.monotonic() - started:.0f}s)")
        figures.update(part(options))
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


# --- the report -------------------------------------------------------------------------------

# (figure, engine's key, baseline's key or a fixed baseline text, ratio's key, target)
ROWS: list[tuple[str, str, str, str, str]] = [
    (
        "steps/s, transactional, inline and taken doorbells ÷ trivial RQ jobs/s"
        " (SimpleWorker, 1 process)",
        "engine_steps_per_s",
        "rq_jobs_per_s",
        "engine_vs_rq",
        ">= 2.0",
    ),
    (
        "steps/s, transactional, no inline ÷ trivial RQ jobs/s",
        "engine_no_inline_steps_per_s",
        "rq_jobs_per_s",
        "engine_no_inline_vs_rq",
        "",
    ),
    (
        "steps/s, at-least-once, inline ÷ trivial RQ jobs/s",
        "at_least_once_steps_per_s",
        "rq_jobs_per_s",
        "at_least_once_vs_rq",
        ">= 1.0",
    ),
    ("raw database commits/s (INSERT + COMMIT), for context", "commits_per_s", "", "", ""),
    (
        "queries per transactional step (marginal; SQL statements, BEGIN/COMMIT not counted)",
        "queries_per_step",
        "",
        "",
        "<= 6",
    ),
    (
        "database round trips per transactional step (marginal, BEGIN/COMMIT included)",
        "round_trips_per_step",
        "",
        "",
        "",
    ),
    (
        "queries per step, whole 4-step sagas in one burst (jobs included)",
        "queries_per_step_whole_saga",
        "",
        "",
        "",
    ),
    ("commits per transactional step", "commits_per_step", "", "", "1"),
    (
        "Redis round trips per step, whole 4-step sagas in one burst",
        "redis_round_trips_per_step_whole_saga",
        "",
        "",
        "",
    ),
    ("queries to start a saga", "start_queries", "", "", "<= 5"),
    ("commits to start a saga", "start_commits", "", "", "1"),
    ("Redis round trips to start a saga", "start_redis_round_trips", "", "", ""),
    (
        "p50 ms start→COMPLETED, 4 steps ÷ p50 ms RQ enqueue→finished (1 idle rqworker)",
        "saga_p50_ms",
        "rq_p50_ms",
        "latency_vs_rq",
        "<= 1.5",
    ),
    (
        "steps/s with 2 rqworker processes ÷ with 1",
        "engine_steps_per_s_2_workers",
        "engine_steps_per_s_1_worker",
        "two_workers_vs_one",
        ">= 1.7 (PG)",
    ),
    (
        "trivial RQ jobs/s with 2 rqworker processes ÷ with 1 (the machine's limit)",
        "rq_jobs_per_s_2_workers",
        "rq_jobs_per_s_1_worker",
        "rq_two_workers_vs_one",
        "",
    ),
    ("queries of one sweep with nothing to do", "idle_sweep_queries", "", "", "O(1)"),
    ("Redis round trips of that sweep", "idle_sweep_redis_round_trips", "", "", ""),
    ("one sweep over N due runs with lost doorbells: N", "due_sweep_runs", "", "", "10,000"),
    ("  runs it rang again", "due_sweep_redriven", "", "", ""),
    ("  its queries", "due_sweep_queries", "", "", "per batch, not per run"),
    ("  its queries per run rung", "due_sweep_queries_per_run", "", "", ""),
    ("  its Redis round trips", "due_sweep_redis_round_trips", "", "", "pipelined"),
    ("  its Redis round trips per run rung", "due_sweep_redis_round_trips_per_run", "", "", ""),
    (
        "  runs rung by further sweeps until one rang none (of N)",
        "due_sweeps_redriven",
        "due_sweep_runs",
        "",
        "",
    ),
]


def _number(value: Any) -> str:
    if value == "" or value is None:
        return ""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"


def report(figures: dict[str, Any], options: Options) -> str:
    """Return the readable table, then the JSON line (always the last line)."""
    lines = [
        f"database: {figures['database']}; redis: {figures['redis']}; {options}",
        f"{'figure':84} {'engine':>9} {'baseline':>9} {'ratio':>7}  target",
    ]
    for label, engine, baseline, ratio, target in ROWS:
        lines.append(
            f"{label:84} {_number(figures.get(engine, '')):>9}"
            f" {_number(figures.get(baseline, '')):>9}"
            f" {_number(figures.get(ratio, '')):>7}  {target}"
        )
    numbers = {
        key: round(value, 3) if isinstance(value, float) else value
        for key, value in figures.items()
    }
    lines.append(json.dumps(numbers, sort_keys=True))
    return "\n".join(lines)
