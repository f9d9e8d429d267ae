"""The chaos suite's stack: gunicorn, three rqworkers and the sweeper on PostgreSQL and Redis."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import chaos_plan as plan
import pytest
from chaos_faults import FaultLog, Stack
from django.conf import settings
from django.db import connection
from subprocesses import Processes, print_logs


def unmet_requirement() -> str | None:
    """Say what the chaos suite lacks to run here, if anything."""
    if connection.vendor != "postgresql":
        return (
            "the chaos suite needs PostgreSQL (it terminates database backends):"
            " set DATABASE_URL=postgres://..."
        )
    if settings.EMBEDDED_REDIS:
        return "the chaos suite needs a real Redis: set REDIS_URL=redis://..."
    return None


def must_run() -> bool:
    """Say whether the suite must run: under CI on PostgreSQL, a missing Redis fails it."""
    return bool(os.getenv("CI")) and connection.vendor == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Skipped at collection, before pytest-django builds a test database for nothing.
    reason = unmet_requirement()
    if reason is None or must_run():
        return
    for item in items:
        if item.get_closest_marker("chaos"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def real_services() -> None:
    """Fail a chaos test that runs without PostgreSQL and a real Redis (under CI)."""
    reason = unmet_requirement()
    if reason is not None:
        pytest.fail(reason)


@pytest.fixture
def chaos_seed(request: pytest.FixtureRequest) -> int:
    """Return the plan's seed (--chaos-seed, else $BPM_CHAOS_SEED, else the fixed default),
    announced before the run starts."""
    seed = request.config.getoption("--chaos-seed")
    if seed is None:
        seed = int(os.getenv("BPM_CHAOS_SEED", str(plan.DEFAULT_SEED)))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nchaos seed {seed} (rerun with --chaos-seed {seed})")
    return int(seed)


@pytest.fixture
def chaos_plan(chaos_seed: int) -> plan.Plan:
    return plan.make_plan(chaos_seed)


@pytest.fixture
def fault_log() -> FaultLog:
    return FaultLog()


@pytest.fixture
def stack(
    real_services: None, tmp_path: Path, chaos_seed: int, fault_log: FaultLog
) -> Iterator[Stack]:
    """Return the production process set's starter, configured as the chaos run needs it."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    overrides = {
        "DEBUG": "false",
        "SECRET_KEY": "chaos-suite-secret-key-not-for-production",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BPM_VAR_DIR": str(var_dir),
        # Mail lands in files under $BPM_VAR_DIR/mail, where the checks count it.
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "BPM_SWEEP_INTERVAL": "1",
        "BPM_REDRIVE_GRACE": "2",
        "PAYMENTS_GATEWAY_SLOW_SECONDS": "0.2",
        "BPM_API_USER_PER_MINUTE": "0",
        "BPM_API_ANON_PER_MINUTE": "0",
        "BPM_SSL_REDIRECT": "false",
    }
    processes = Processes(tmp_path, overrides)
    yield Stack(processes, random.Random(chaos_seed), fault_log)
    processes.stop_all()
    print_logs(tmp_path, tail=4000)
