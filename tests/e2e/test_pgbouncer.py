"""Workers and the sweeper behind a real PgBouncer in transaction pooling (BPM_PGBOUNCER=true).

Two server connections serve three clients (two rqworkers, the sweeper), so consecutive
transactions of one process land on different server connections, as in production: the
engine's claims (select_for_update inside the transaction) and outcomes must hold no state
between transactions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from subprocesses import Processes, free_port, poll

from bpm import services
from bpm.models import EventType, SagaEvent, SagaInstance, SagaStatus
from notifications.models import Notification
from orders.models import Order
from payments.models import Payment
from payments.services import customer_create

PGBOUNCER = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
POOL_SIZE = 2
# The admin console, unaligned and tab-separated.
PSQL = ("psql", "-h", "127.0.0.1", "-d", "pgbouncer", "-A", "-F", "\t")
SAGAS = 12

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PgBouncer pools PostgreSQL"),
    pytest.mark.skipif(
        PGBOUNCER is None, reason="no pgbouncer binary: `apt-get install pgbouncer` to run this"
    ),
]


class PgBouncer:
    """A pgbouncer of the test's own, on a free loopback port, in front of the test database."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        settings = connection.settings_dict
        self.user = settings["USER"] or "postgres"
        self.database = settings["NAME"]
        self.process: subprocess.Popen[bytes] | None = None
        config = directory / "pgbouncer.ini"
        (directory / "users.txt").write_text(f'"{self.user}" ""\n')
        config.write_text(
            "[databases]\n"
            f"* = host={settings['HOST'] or '127.0.0.1'} port={settings['PORT'] or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
            f"admin_users = {self.user}\n"
            f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 50\n"
        )
        self.config = config

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> None:
        assert PGBOUNCER is not None
        # PgBouncer refuses to run as root; it reads its files first, then drops to -u's user.
        as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
        log = (self.directory / "pgbouncer.log").open("ab")
        self.process = subprocess.Popen(
            [PGBOUNCER, *as_user, str(self.config)], stdout=log, stderr=subprocess.STDOUT
        )
        poll(lambda: self.show("VERSION") is not None, timeout=15, message="pgbouncer")

    def show(self, what: str) -> list[list[str]] | None:
        """Return the admin console's answer to SHOW `what` (rows of columns), None if down."""
        result = subprocess.run(
            [*PSQL, "-p", str(self.port), "-U", self.user, "-c", f"SHOW {what}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if result.returncode != 0:
            return None
        return [line.split("\t") for line in result.stdout.splitlines()[:-1]]

    def transactions(self) -> int:
        """Return how many transactions went through to the test database."""
        rows = self.show("STATS") or []
        header, *lines = rows
        column = header.index("total_xact_count")
        return sum(int(row[column]) for row in lines if row[0] == self.database)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=15)


@pytest.fixture
def pgbouncer(tmp_path: Path) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(tmp_path)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()  # before the test database is flushed and dropped: it holds connections
        print((tmp_path / "pgbouncer.log").read_text(errors="replace")[-3000:])


def place(customer_id: int) -> SagaInstance:
    order_input = {
        "customer_id": customer_id,
        "products": [1],
        "total": "10.00",
        "payment_method": "credit_card",
    }
    return services.saga_start(definition="place_order", input=order_input, actor="test")


def test_sagas_complete_once_with_workers_and_sweeper_behind_transaction_pooling(
    pgbouncer: PgBouncer, processes: Processes
) -> None:
    processes.overrides.update(DATABASE_URL=pgbouncer.url, BPM_PGBOUNCER="true")
    rich = customer_create(name="Rich", email="rich@example.com", credit_limit=Decimal("100000"))
    sagas = [place(rich.id) for _ in range(SAGAS)]
    before = pgbouncer.transactions()
    processes.worker("worker-1")
    processes.worker("worker-2")
    processes.sweeper()
    ids = [saga.pk for saga in sagas]
    poll(
        lambda: (
            not SagaInstance.objects.filter(pk__in=ids)
            .exclude(status=SagaStatus.COMPLETED)
            .exists()
        ),
        timeout=120,
        message="every saga to complete behind PgBouncer",
    )
    for saga in sagas:
        order = Order.objects.get(saga_id=saga.id)
        assert Payment.objects.filter(order_id=order.id).count() == 1
        assert Notification.objects.filter(saga_id=saga.id).count() == 1
    started = SagaEvent.objects.filter(saga__in=ids, type=EventType.STEP_STARTED).count()
    assert started == SAGAS * 4  # each step ran once
    # Every claim, outcome and sweep went through PgBouncer: at least one transaction a step.
    assert pgbouncer.transactions() - before >= SAGAS * 4
    assert all(process.poll() is None for process in processes.started), "a process died"
