"""The Prometheus metrics that processes record as things happen (docs/monitoring.md).

Workers record steps and sagas, the web processes their requests. Under
gunicorn and RQ every process writes to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds them
up (bpm.monitoring.exposition); without it each process counts for itself. What can be read from
the database or Redis at scrape time (saga counts, queues, workers, the sweeper's heartbeat and
its totals) is not recorded here: see bpm.monitoring.collectors.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from bpm import clock
from bpm.monitoring import process_slots

if TYPE_CHECKING:
    from bpm.models import SagaInstance, StepRun

# Normally done by the settings already; here too for a process that imports this first.
process_slots.install()
# Multiprocess mode has no *_created samples: per process, leave them out too, so /metrics
# exports the same series however the site runs.
disable_created_metrics()

# Holds these metrics when they are per process; in multiprocess mode the files hold them.
REGISTRY = CollectorRegistry(auto_describe=True)

STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
SAGA_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600, 7 * 86400)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STEP_LABELS = ("definition", "step", "direction", "outcome")
FINISHED = {"COMPLETED": "completed", "COMPENSATED": "compensated"}
# Anything else a client sends is counted as OTHER: a label value must come from a short list.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

step_duration = Histogram(
    "bpm_step_duration_seconds",
    "Time from a step attempt's claim to its recorded outcome.",
    STEP_LABELS,
    buckets=STEP_BUCKETS,
    registry=REGISTRY,
)
step_attempts = Counter(
    "bpm_step_attempts",
    "Step attempts whose outcome was recorded (succeeded, refused, fault).",
    STEP_LABELS,
    registry=REGISTRY,
)
saga_duration = Histogram(
    "bpm_saga_duration_seconds",
    "Time from a saga's start to its end (completed or compensated).",
    ("definition", "outcome"),
    buckets=SAGA_BUCKETS,
    registry=REGISTRY,
)
requests = Counter(
    "bpm_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
    registry=REGISTRY,
)
request_duration = Histogram(
    "bpm_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ("route", "method", "status"),
    buckets=REQUEST_BUCKETS,
    registry=REGISTRY,
)


def observe_outcome(saga: SagaInstance, run: StepRun, kind: str) -> None:
    """Count this attempt's outcome, and the saga's end, once the recording transaction commits.

    Called by the engine as it starts recording (the lease still tells when the attempt was
    claimed); the saga's status is read at commit, after the engine decided the next move.
    """
    claimed = _claimed_at(run)
    attempt_seconds = None if claimed is None else max(0.0, (clock.now() - claimed).total_seconds())
    labels = (saga.definition_name, run.step.name, run.direction.lower(), kind)

    def observe() -> None:
        step_attempts.labels(*labels).inc()
        if attempt_seconds is not None:
            step_duration.labels(*labels).observe(attempt_seconds)
        outcome = FINISHED.get(saga.status)
        if outcome is not None and saga.finished_at is not None:
            elapsed = (saga.finished_at - saga.created_at).total_seconds()
            saga_duration.labels(saga.definition_name, outcome).observe(max(0.0, elapsed))

    transaction.on_commit(observe, robust=True)


def _claimed_at(run: StepRun) -> datetime | None:
    """Return when the running attempt was claimed: the claim set its lease to that time plus
    the step's timeout plus the engine's grace. None if the run holds no lease."""
    from bpm.engine import LEASE_GRACE  # the engine imports this module

    if run.lease_expires_at is None:
        return None
    return run.lease_expires_at - LEASE_GRACE - timedelta(seconds=run.step.timeout)


def observe_request(*, route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request and how long it took."""
    labels = (route, method if method in METHODS else "OTHER", str(status))
    requests.labels(*labels).inc()
    request_duration.labels(*labels).observe(seconds)
