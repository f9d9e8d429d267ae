"""The text /metrics answers: every process's recorded metrics plus what is read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bpm import metrics
from bpm.monitoring import process_slots
from bpm.monitoring.collectors import StateCollector


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from metrics.REGISTRY.collect()


def render() -> bytes:
    """Return the metrics in Prometheus's text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    path = process_slots.directory()
    if path is not None:
        # Every process's files: gunicorn's workers, the rqworkers and their horses, this one.
        MultiProcessCollector(registry, path=str(path))
    else:
        registry.register(_ThisProcess())
    registry.register(StateCollector())
    return generate_latest(registry)
