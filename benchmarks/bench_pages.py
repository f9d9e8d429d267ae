"""How long the dashboard, admin and API pages take on the configured database, and their queries.

Run after `manage.py seed_sagas --count N` (see docs/benchmarks.md, "Data at scale"):
`DEBUG=true DATABASE_URL=postgres://… BPM_VAR_DIR=… .venv/bin/python benchmarks/bench_pages.py`
Each page is rendered in this process by Django's test client as a superuser (created if
missing: `bench-pages`), once to warm up and then --runs times; it prints the median time, the
number of queries and the slowest query's time. It asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from bpm.dashboard import keyset  # noqa: E402
from bpm.dashboard.saga_filter import ORDERINGS  # noqa: E402
from bpm.models import SagaDefinition, SagaInstance, SagaStatus  # noqa: E402


@contextmanager
def timed_queries() -> Iterator[list[float]]:
    """Collect the duration of every query run inside the block."""
    durations: list[float] = []

    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            durations.append(time.perf_counter() - started)

    with connection.execute_wrapper(wrapper):
        yield durations


def measure(client: Client, url: str, runs: int, htmx: bool) -> tuple[float, int, float]:
    """Return the median time of a GET of `url`, its query count and its slowest query, in ms."""
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get(url, headers=headers)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    times, counts, slowest = [], [], []
    for _ in range(runs):
        with timed_queries() as durations:
            started = time.perf_counter()
            client.get(url, headers=headers)
            times.append(time.perf_counter() - started)
        counts.append(len(durations))
        slowest.append(max(durations, default=0.0))
    return statistics.median(times) * 1000, max(counts), statistics.median(slowest) * 1000


def pages() -> list[tuple[str, str]]:
    """Return (label, url) for every page measured, picking rows from the data."""
    newest = SagaDefinition.objects.order_by("name", "-version").first()
    assert newest is not None, "no definitions: run sync_definitions and seed_sagas first"
    name = newest.name
    oldest = SagaDefinition.objects.filter(name=name).order_by("version").first()
    assert oldest is not None
    total = SagaInstance.objects.count()
    deep_row = SagaInstance.objects.order_by("-created_at", "-id")[total * 9 // 10]
    deep = keyset.encode(ORDERINGS["-created"], deep_row, backwards=False)
    stuck = SagaInstance.objects.filter(status=SagaStatus.STUCK).order_by("created_at").first()
    assert stuck is not None
    prefix = stuck.id.hex[:6]
    key = stuck.business_key
    admin = "/admin/bpm/sagainstance/"
    last_page = min(total, 10_000) // 100 if "--capped" in sys.argv else total // 100
    return [
        ("overview", "/admin/dashboard/"),
        ("overview live refresh (htmx)", "/admin/dashboard/"),
        ("definitions", "/admin/dashboard/definitions/"),
        (f"definition {name}", f"/admin/dashboard/definitions/{name}/"),
        ("saga list", "/admin/dashboard/sagas/"),
        ("saga list, status=STUCK", "/admin/dashboard/sagas/?status=STUCK"),
        ("saga list, status=COMPLETED", "/admin/dashboard/sagas/?status=COMPLETED"),
        ("saga list, definition", f"/admin/dashboard/sagas/?definition={name}"),
        (
            f"saga list, oldest version v{oldest.version}",
            f"/admin/dashboard/sagas/?definition={name}&version={oldest.version}",
        ),
        ("saga list, reason=TIMED_OUT", "/admin/dashboard/sagas/?reason=TIMED_OUT"),
        ("saga list, sorted by change", "/admin/dashboard/sagas/?sort=updated"),
        ("saga list, search id prefix", f"/admin/dashboard/sagas/?q={prefix}"),
        ("saga list, search order id", f"/admin/dashboard/sagas/?q={key}"),
        ("saga list, page at 90 % depth", f"/admin/dashboard/sagas/?cursor={deep}"),
        ("saga page", f"/admin/dashboard/sagas/{stuck.id}/"),
        ("API saga list", "/api/v1/sagas/"),
        ("API saga list, status=STUCK", "/api/v1/sagas/?status=STUCK"),
        ("API saga list, business_key", f"/api/v1/sagas/?business_key={key}"),
        ("API saga", f"/api/v1/sagas/{stuck.id}/"),
        ("admin changelist", admin),
        ("admin changelist, status=COMPLETED", f"{admin}?status__exact=COMPLETED"),
        ("admin changelist, last page", f"{admin}?p={last_page}"),
        ("admin search, id prefix", f"{admin}?q={prefix}"),
        ("admin search, order id", f"{admin}?q={key}"),
        ("admin saga", f"{admin}{stuck.id}/change/"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed GETs per page (default 5)")
    parser.add_argument(
        "--capped", action="store_true", help="the admin counts up to 10,000: its last page is 100"
    )
    parser.add_argument("--only", help="measure only the pages whose label contains this")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    setup_test_environment()
    user = get_user_model().objects.filter(username="bench-pages").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench-pages", password=None)
    client = Client()
    client.force_login(user)
    print(f"{SagaInstance.objects.count():,} sagas on {connection.vendor}")
    print(f"{'page':45} {'median ms':>10} {'queries':>8} {'slowest query ms':>17}")
    for label, url in pages():
        if args.only and args.only not in label:
            continue
        median, queries, slowest = measure(client, url, args.runs, "htmx" in label)
        print(f"{label:45} {median:10.1f} {queries:8d} {slowest:17.1f}")


if __name__ == "__main__":
    main()
