"""BPM_METRICS_TOKEN is checked at start-up: a short or padded token is refused with the reason."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from subprocesses import ROOT


def check(**env: str) -> subprocess.CompletedProcess[str]:
    base = {key: os.environ[key] for key in ("PATH", "HOME", "BPM_VAR_DIR") if key in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize("token", ["short", "fifteen-chars-x", " padded-token-0123456789 "])
def test_a_short_or_padded_token_is_refused_at_start(token: str) -> None:
    result = check(BPM_METRICS_TOKEN=token)

    assert result.returncode != 0
    assert "BPM_METRICS_TOKEN must be at least 16 characters" in result.stderr


def test_a_long_token_is_accepted() -> None:
    result = check(BPM_METRICS_TOKEN="sixteen-chars-ok")

    assert result.returncode == 0, result.stderr
