"""The probes during real outages: a redis-server stopped, the test database made unreachable.

/healthz stays 200 (the process serves); /readyz answers 503 within its timeouts and names the
service that is down; /metrics still answers, leaving out what it could not read.
"""

from __future__ import annotations

import django_rq
import pytest
from django.conf import settings
from django.test import Client
from scraping import parse, value

from bpm.monitoring import heartbeat, readiness
from bpm.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def ready_but_for_outages() -> None:
    """Register a live worker and a fresh sweep, so only the outage can fail /readyz."""
    connection = django_rq.get_connection("default")
    Worker(settings.BPM_QUEUES, name="w1", connection=connection).register_birth()
    heartbeat.beat(connection, leases_expired=0, redriven=0)


def test_with_redis_stopped_readyz_is_503_at_once_and_says_redis_is_unreachable(
    client: Client, own_redis
) -> None:
    ready_but_for_outages()
    assert client.get("/readyz").status_code == 200
    own_redis.stop()

    response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is False
    assert checks["redis"]["detail"] == "Redis is unreachable (ConnectionError)"
    assert str(own_redis.port) not in response.content.decode(), "no address is given away"
    assert checks["redis"]["seconds"] <= readiness.REDIS_TIMEOUT
    assert checks["workers"] == {
        "ok": False,
        "detail": "not checked: Redis is unreachable",
        "seconds": 0,
    }
    assert checks["database"]["ok"] is True
    assert client.get("/healthz").status_code == 200
    samples = parse(client.get("/metrics").content.decode())
    assert value(samples, "bpm_metrics_source_up", source="redis") == 0
    assert value(samples, "bpm_metrics_source_up", source="database") == 1

    own_redis.start()
    ready_but_for_outages()
    assert client.get("/readyz").status_code == 200


def test_with_the_database_down_readyz_is_503_and_says_so(
    client: Client, own_redis, database_outage
) -> None:
    ready_but_for_outages()
    assert client.get("/readyz").status_code == 200

    with database_outage.during():
        response = client.get("/readyz")
        healthz = client.get("/healthz")
        metrics = client.get("/metrics")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is False
    assert checks["database"]["detail"] == "the database is unreachable (OperationalError)"
    assert checks["redis"]["ok"] is True
    assert healthz.status_code == 200
    assert metrics.status_code == 200
    assert value(parse(metrics.content.decode()), "bpm_metrics_source_up", source="database") == 0
    assert client.get("/readyz").status_code == 200, "the next probe reconnects"
