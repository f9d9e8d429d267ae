"""The example systemd units in deploy/: valid for `systemd-analyze verify`, hardened, and
stopping the way the workers need (SIGTERM to the main process only, then a bounded wait)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from subprocesses import ROOT

DEPLOY = ROOT / "deploy"
SERVICES = sorted(DEPLOY.glob("*.service"))
LONG_RUNNING = [
    "bpm-web.service",
    "bpm-worker@.service",
    "bpm-sweeper.service",
    "bpm-serve.service",
]
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}


def read_unit(path: Path) -> configparser.ConfigParser:
    # strict=False: a unit may repeat a key (ExecStart= in a oneshot, SystemCallFilter=).
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(path)
    return unit


def env_example() -> dict[str, str]:
    lines = (DEPLOY / "bpm.env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return dict(pairs)


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        message = "systemd-analyze is not installed (Debian: apt-get install systemd)"
        if os.getenv("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Point the units at this checkout and interpreter: verify checks that ExecStart= exists.
    for path in [*SERVICES, DEPLOY / "bpm.target"]:
        text = path.read_text().replace("/srv/bpm/.venv/bin/python", sys.executable)
        (tmp_path / path.name).write_text(text.replace("/srv/bpm", str(ROOT)))
    # A template is verified through an instance.
    (tmp_path / "bpm-worker@.service").rename(tmp_path / "bpm-worker@1.service")
    units = sorted(str(path) for path in tmp_path.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.name)
def test_every_unit_is_hardened(path: Path) -> None:
    service = read_unit(path)["Service"]
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert service["User"] == "bpm"
    assert service["EnvironmentFile"] == "/etc/bpm/bpm.env"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_a_stop_sends_sigterm_to_the_main_process_and_waits_past_the_stop_timeout(
    name: str,
) -> None:
    """A worker's work horse must not get SIGTERM (it would abandon its step): KillMode=mixed."""
    service = read_unit(DEPLOY / name)["Service"]
    assert service["KillMode"] == "mixed"
    assert service["Restart"] == "always"
    if name != "bpm-sweeper.service":
        assert int(service["TimeoutStopSec"]) > int(env_example()["BPM_STOP_TIMEOUT"])


def test_the_workers_serve_every_queue_of_the_example_environment() -> None:
    env = env_example()
    assert env["BPM_WORKER_QUEUES"].split() == env["BPM_QUEUES"].split(",")
    worker = read_unit(DEPLOY / "bpm-worker@.service")["Service"]
    assert worker["ExecStart"].endswith("rqworker --with-scheduler $BPM_WORKER_QUEUES")


def test_the_target_starts_the_web_app_workers_and_the_sweeper() -> None:
    wants = read_unit(DEPLOY / "bpm.target")["Unit"]["Wants"].split()
    assert wants == [
        "bpm-web.service",
        "bpm-worker@1.service",
        "bpm-worker@2.service",
        "bpm-sweeper.service",
    ]
