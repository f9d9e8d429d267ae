"""Redis Sentinel: the master is SIGKILLed with sagas in flight; the replica takes over.

Real processes throughout: a master, a replica and three sentinels (tests/redis_sentinel.py), two
rqworkers and the sweeper, all pointed at the sentinels (REDIS_SENTINELS), never at a master.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count
from redis_sentinel import FAILOVER_TIMEOUT_MS, MASTER_NAME, SentinelCluster
from subprocesses import Processes, poll

from bpm import redis_connection, services
from bpm.models import Barrier, EventType, SagaEvent, SagaInstance, SagaStatus
from notifications.models import Notification
from orders.models import Order
from payments.models import Payment
from payments.services import customer_create

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="two rqworkers and a sweeper write concurrently: needs PostgreSQL (DATABASE_URL)",
    ),
]

SAGAS = 30
# The sentinels need DOWN_AFTER_MS to call the master down, then elect a leader and promote the
# replica: well within the failover timeout.
PROMOTION_BOUND = FAILOVER_TIMEOUT_MS / 1000 * 2
# From the promotion to the last saga finishing: a worker that met the dead master waits out
# RQ's reconnection back-off (1, 2, 4, 8 s: at most 15 s in all before it tries after a promotion
# that took under 10 s), a doorbell Redis lost is rung again after BPM_REDRIVE_GRACE (1 s here)
# plus a sweep (0.5 s), and the sagas left then need a few seconds of work.
RECOVERY_BOUND = 45.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    sentinels = SentinelCluster(tmp_path)
    try:
        sentinels.start()
        yield sentinels
    finally:
        sentinels.stop()
        print(sentinels.logs())


@pytest.fixture
def through_sentinel(
    cluster: SentinelCluster, settings: Any, processes: Processes
) -> dict[str, str]:
    """Point this process's queues and every subprocess at the sentinels, not at REDIS_URL."""
    environment = {
        "REDIS_URL": "",
        "REDIS_SENTINELS": cluster.sentinels,
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
    }
    params = redis_connection.params_from_environment(environment, default_url="")
    settings.REDIS_CONNECTION = params
    settings.REDIS_URL = None
    settings.RQ_QUEUES = {name: {**params, "DEFAULT_TIMEOUT": 300} for name in settings.RQ_QUEUES}
    processes.overrides.update(environment)
    return environment


def place(customer_id: int) -> SagaInstance:
    order_input = {
        "customer_id": customer_id,
        "products": [1],
        "total": "10.00",
        "payment_method": "credit_card",
    }
    return services.saga_start(definition="place_order", input=order_input, actor="test")


def unfinished(sagas: list[SagaInstance]) -> int:
    ids = [saga.pk for saga in sagas]
    return SagaInstance.objects.filter(pk__in=ids).exclude(status=SagaStatus.COMPLETED).count()


def assert_every_step_ran_once(sagas: list[SagaInstance]) -> None:
    ids = [saga.pk for saga in sagas]
    assert unfinished(sagas) == 0
    per_step = (
        SagaEvent.objects.filter(
            saga__in=ids, type__in=[EventType.STEP_STARTED, EventType.STEP_SUCCEEDED]
        )
        .values("saga", "step_run__step__name", "type")
        .annotate(n=Count("id"))
    )
    twice = [row for row in per_step if row["n"] != 1]
    assert twice == [], "a step started or succeeded more than once"
    assert len(per_step) == SAGAS * 4 * 2  # four steps, each started once and succeeded once
    for saga in sagas:
        order = Order.objects.get(saga_id=saga.id)
        assert order.state == "APPROVED"
        assert Payment.objects.filter(order_id=order.id).count() == 1
        assert Notification.objects.filter(saga_id=saga.id).count() == 1
    # The transactional steps (create_order, approve_order) committed behind the barrier once
    # each; nothing was compensated, so no compensation row and no placeholder.
    barriers = Barrier.objects.filter(saga__in=ids)
    assert sorted(barriers.values_list("step", "operation", "placeholder").distinct()) == [
        ("approve_order", "ACTION", False),
        ("create_order", "ACTION", False),
    ]
    assert barriers.count() == SAGAS * 2


def test_sagas_in_flight_when_the_redis_master_is_killed_complete_once_on_the_promoted_replica(
    cluster: SentinelCluster, through_sentinel: dict[str, str], processes: Processes
) -> None:
    rich = customer_create(name="Rich", email="rich@example.com", credit_limit=Decimal("100000"))
    sagas = [place(rich.id) for _ in range(SAGAS)]
    processes.worker("worker-1")
    processes.worker("worker-2")
    processes.sweeper()
    poll(lambda: unfinished(sagas) <= SAGAS - 3, message="a few sagas to complete")

    old_port = cluster.kill_master()
    in_flight = unfinished(sagas)
    assert in_flight > 0, "every saga finished before the master died; the test proved nothing"
    killed_at = time.monotonic()
    new_port = cluster.wait_for_new_master(old_port, timeout=PROMOTION_BOUND)
    promoted_after = time.monotonic() - killed_at
    poll(
        lambda: unfinished(sagas) == 0,
        timeout=RECOVERY_BOUND,
        message=f"the {in_flight} sagas in flight to complete after the promotion",
    )
    print(
        f"master :{old_port} killed with {in_flight}/{SAGAS} sagas in flight; "
        f":{new_port} promoted after {promoted_after:.1f}s; "
        f"all complete {time.monotonic() - killed_at:.1f}s after the kill"
    )
    assert_every_step_ran_once(sagas)
    assert all(process.poll() is None for process in processes.started), "a process died"
    for process in processes.started:  # and each still stops cleanly, deregistering itself
        processes.kill(process, signal.SIGTERM)
        assert process.returncode == 0, process.args
