"""var/ and everything the product writes into it are private to the user (0700 / 0600)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Migrate a fresh SQLite file, write a mail through the file backend, start and stop the embedded
# Redis: everything the development stack creates in var/.
SCRIPT = """
import django
django.setup()
from pathlib import Path
from django.conf import settings
from django.core.mail import send_mail
from django.core.management import call_command
from bpm import embedded_redis
call_command("migrate", verbosity=0)
send_mail("subject", "body", "shop@example.com", ["someone@example.com"])
socket = embedded_redis.socket_path_from_url(settings.REDIS_URL)
embedded_redis.ensure_running(socket)
embedded_redis.stop(socket)
"""


def run_stack_parts(var_dir: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "EMAIL_BACKEND"}
    }
    env.update(BPM_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="bpm.settings", DEBUG="true")
    env["BPM_DEBUG_ALLOWED"] = "true"
    # A permissive umask, as a login shell often has: the product must not depend on it.
    result = subprocess.run(
        [sys.executable, "-c", f"import os; os.umask(0o022)\n{SCRIPT}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def open_to_others(var_dir: Path) -> dict[str, str]:
    """Return every path under var_dir (itself included) that group or others may access."""
    found = {}
    for path in [var_dir, *var_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found[str(path.relative_to(var_dir.parent))] = oct(mode)
    return found


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    # Short: the embedded Redis's socket path must fit in sun_path.
    return tmp_path / "var"


def test_a_fresh_var_dir_and_everything_in_it_is_private(var_dir):
    run_stack_parts(var_dir)
    written = {path.name for path in var_dir.rglob("*")}
    assert {"bpm.sqlite3", "mail", "redis", "redis.conf", "redis.log"} <= written
    assert any(path.suffix == ".log" for path in (var_dir / "mail").iterdir())
    assert open_to_others(var_dir) == {}


def test_an_existing_world_readable_var_dir_is_made_private(var_dir):
    var_dir.mkdir(mode=0o755)
    var_dir.chmod(0o755)
    run_stack_parts(var_dir)
    assert stat.S_IMODE(var_dir.stat().st_mode) == 0o700


def test_a_shared_sticky_directory_is_refused_as_var_dir(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "BPM_VAR_DIR": str(shared)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "shared directory" in result.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
