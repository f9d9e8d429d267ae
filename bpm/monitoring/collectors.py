"""Metrics read at scrape time from the database and Redis, which hold the truth about them.

Counting sagas by status in the database (one grouped query each) means every web process,
on every machine, exports the same numbers however it started; a source that cannot be read
leaves its metrics out and says so in bpm_metrics_source_up rather than failing the scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import CounterMetricFamily as CounterFamily
from prometheus_client.core import GaugeMetricFamily as GaugeFamily
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq.queue import Queue

from bpm import totals
from bpm.models import SagaInstance, SagaStatus
from bpm.monitoring import heartbeat, readiness
from bpm.outages import DATABASE_ERRORS

log = logging.getLogger(__name__)

# RQ's job states, each counted by the length of its list or registry.
QUEUE_STATES = ("queued", "started", "scheduled", "deferred", "failed", "finished", "canceled")


def saga_status_counts() -> list[tuple[str, str, int]]:
    """Return (definition name, status, how many sagas) for every pair that has sagas.

    From the dashboard's own selector (bpm/totals.py): the unfinished statuses counted through
    their partial index, the finished ones from the rollup, so a scrape costs the same at 10^6
    sagas as at 10^3. Finished totals include sagas retention has archived since.
    """
    return [
        (name, status, count)
        for name, by_status in totals.counts_by("name").items()
        for status, count in by_status.items()
        if count
    ]


def stuck_saga_counts() -> list[tuple[str, str, int]]:
    """Return (definition name, stuck reason, how many STUCK sagas) for every such pair."""
    rows = (
        SagaInstance.objects.filter(status=SagaStatus.STUCK)
        .order_by()
        .values_list("definition_name", "stuck_reason")
        .annotate(count=Count("id"))
    )
    return [(name, reason, count) for name, reason, count in rows]


def queue_job_counts(connection: Redis) -> dict[str, dict[str, int]]:
    """Return how many jobs each queue of BPM_QUEUES holds in each state; one round trip."""
    queues = [Queue(name, connection=connection) for name in settings.BPM_QUEUES]
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            for registry in (
                queue.started_job_registry,
                queue.scheduled_job_registry,
                queue.deferred_job_registry,
                queue.failed_job_registry,
                queue.finished_job_registry,
                queue.canceled_job_registry,
            ):
                pipe.zcard(registry.key)
        replies = pipe.execute()
    width = len(QUEUE_STATES)
    return {
        queue.name: dict(zip(QUEUE_STATES, replies[i * width : (i + 1) * width], strict=True))
        for i, queue in enumerate(queues)
    }


class StateCollector(Collector):
    """Sagas from the database; queues, workers and the sweeper from Redis."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeFamily(
            "bpm_metrics_source_up",
            "Whether /metrics could read this source (database, redis) at this scrape.",
            labels=["source"],
        )
        database = list(self._from_database())
        up.add_metric(["database"], 1.0 if database else 0.0)
        yield from database
        connection = readiness.probe_connection()
        from_redis = list(self._from_redis(connection))
        up.add_metric(["redis"], 1.0 if from_redis else 0.0)
        yield from from_redis
        yield up

    def _from_database(self) -> Iterator[Metric]:
        sagas = GaugeFamily(
            "bpm_sagas", "Sagas by definition and status.", labels=["definition", "status"]
        )
        stuck = GaugeFamily(
            "bpm_stuck_sagas",
            "STUCK sagas by definition and reason.",
            labels=["definition", "reason"],
        )
        try:
            for name, status, count in saga_status_counts():
                sagas.add_metric([name, status], count)
            for name, reason, count in stuck_saga_counts():
                stuck.add_metric([name, reason], count)
        except DATABASE_ERRORS as exc:
            log.warning("/metrics left the saga counts out, the database is unreachable: %s", exc)
            return
        yield sagas
        yield stuck

    def _from_redis(self, connection: Redis) -> Iterator[Metric]:
        jobs = GaugeFamily(
            "bpm_queue_jobs", "RQ jobs by queue and state.", labels=["queue", "state"]
        )
        workers = GaugeFamily(
            "bpm_workers", "Live (heartbeating) RQ workers by queue.", labels=["queue"]
        )
        try:
            job_counts = queue_job_counts(connection)
            worker_counts = readiness.live_workers(connection)
            beat = heartbeat.read(connection)
        except RedisError as exc:
            log.warning("/metrics left the queue metrics out, Redis is unreachable: %s", exc)
            return
        for queue, states in job_counts.items():
            for state, count in states.items():
                jobs.add_metric([queue, state], count)
        for queue, count in worker_counts.items():
            workers.add_metric([queue], count)
        yield jobs
        yield workers
        last_run = GaugeFamily(
            "bpm_sweeper_last_run_timestamp_seconds",
            "When the sweeper last finished a sweep (Unix time; absent: none since Redis started).",
        )
        if beat.last_run is not None:
            last_run.add_metric([], beat.last_run)
        yield last_run
        yield CounterFamily(
            "bpm_leases_expired", "Leases the sweeper expired.", value=beat.leases_expired
        )
        yield CounterFamily(
            "bpm_redrives", "Due steps the sweeper rang again.", value=beat.redrives
        )
