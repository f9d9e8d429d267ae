"""`make run` installs what running needs, `make test` and `make lint` the test tool chain too;
read from `make -n` (what make would run), against a virtualenv path that does not exist."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

RUNTIME = "pip install -e .\n"
DEV = "pip install -e '.[dev]'"


def dry_run(target: str, tmp_path: Path) -> str:
    venv = tmp_path / "venv"
    result = subprocess.run(
        # Under `make test` this make is a sub-make, which would print its directory.
        ["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize("target", ["run", "serve"])
def test_running_installs_only_the_runtime_dependencies(target, tmp_path):
    commands = dry_run(target, tmp_path)
    assert RUNTIME in commands
    assert DEV not in commands


@pytest.mark.parametrize("target", ["test", "lint", "venv"])
def test_testing_and_linting_install_the_dev_extras(target, tmp_path):
    assert DEV in dry_run(target, tmp_path)


def test_run_then_starts_runstack(tmp_path):
    commands = dry_run("run", tmp_path)
    assert commands.rstrip().endswith("manage.py runstack")


def test_screenshots_run_the_script_with_the_dev_extras(tmp_path):
    commands = dry_run("screenshots", tmp_path)
    assert DEV in commands and "docs/screenshots/take.py" in commands


def test_the_screenshot_script_says_how_to_use_it():
    script = ROOT / "docs" / "screenshots" / "take.py"
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
    )
    assert "--base-url" in result.stdout and "1366x768" in result.stdout
