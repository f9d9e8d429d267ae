"""What RQ says about the queues and the workers alive on them, for the overview."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.worker import BaseWorker

from bpm import redis_connection

# Seconds the dashboard waits for Redis before saying it is unreachable: a page that hangs
# while Redis is down would hide the very fact the operator needs to see.
REDIS_TIMEOUT = 2.0


@dataclass(frozen=True)
class QueueRow:
    name: str
    queued: int
    started: int
    scheduled: int
    failed: int


@dataclass(frozen=True)
class WorkerRow:
    name: str
    hostname: str
    pid: int | None
    state: str
    queues: list[str]
    current_job: str | None
    last_heartbeat: datetime | None
    successful: int
    failed: int


@dataclass(frozen=True)
class QueueReport:
    """The queues and workers, or why Redis could not be read (`error`)."""

    queues: list[QueueRow] = field(default_factory=list)
    workers: list[WorkerRow] = field(default_factory=list)
    error: str = ""


def queue_report() -> QueueReport:
    """Return the configured queues with their job counts and the registered workers."""
    try:
        connection = _connection("default")
        queues = [_queue_row(name) for name in settings.RQ_QUEUES]
        workers = sorted(
            (_worker_row(worker) for worker in Worker.all(connection=connection)),
            key=lambda row: row.name,
        )
    except RedisError as error:
        return QueueReport(error=f"Redis is unreachable: {str(error).rstrip('.')}")
    return QueueReport(queues=queues, workers=workers)


def _connection(queue: str) -> Redis:
    return redis_connection.client(settings.RQ_QUEUES[queue], timeout=REDIS_TIMEOUT)


def _queue_row(name: str) -> QueueRow:
    queue = Queue(name, connection=_connection(name))
    # Counting without cleanup: a page view must not move jobs between registries.
    return QueueRow(
        name=name,
        queued=queue.count,
        started=queue.started_job_registry.get_job_count(cleanup=False),
        scheduled=queue.scheduled_job_registry.get_job_count(cleanup=False),
        failed=queue.failed_job_registry.get_job_count(cleanup=False),
    )


def _worker_row(worker: BaseWorker) -> WorkerRow:
    return WorkerRow(
        name=worker.name,
        hostname=worker.hostname or "",
        pid=worker.pid,
        state=worker.get_state(),
        queues=worker.queue_names(),
        current_job=worker.get_current_job_id(),
        last_heartbeat=worker.last_heartbeat,
        successful=worker.successful_job_count,
        failed=worker.failed_job_count,
    )
