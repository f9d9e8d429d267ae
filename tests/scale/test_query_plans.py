"""Every page's queries on the big tables use an index, and the index meant for them (EXPLAIN).

PostgreSQL only: the plans are PostgreSQL's. The table is seeded with a few thousand sagas, far
too few for the planner to prefer an index on its own (at that size a sequential scan is
cheapest), so the test turns sequential scans off: a query that still scans a table then has no
index it can use at all. The index it picks among the usable ones is checked against the one each
query is meant to use. docs/benchmarks.md ("Data at scale") has the plans and timings at 10**6.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bpm import definitions, seeding, totals
from bpm.dashboard import causes, keyset
from bpm.dashboard.saga_filter import ORDERINGS
from bpm.dashboard.saga_search import search
from bpm.models import SagaDefinition, SagaInstance, SagaStatus

pytestmark = [
    pytest.mark.django_db,
    # Seeding and planning every page takes about a minute on a shared machine.
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the plans checked are PostgreSQL's"
    ),
]

BIG_TABLES = ("bpm_sagainstance", "bpm_steprun", "bpm_sagaevent")
SAGAS = 4000
ADMIN = "/admin/bpm/sagainstance/"


def plans_of(client: Any, url: str) -> list[tuple[str, str]]:
    """Return (query, plan) for each query the page runs on the big tables."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    found = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip(" (").upper().startswith("SELECT") or not any(
                table in sql for table in BIG_TABLES
            ):
                continue
            cursor.execute(f"EXPLAIN {sql}")
            found.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return found


@pytest.fixture
def seeded(django_user_model: Any, client: Any) -> dict[str, Any]:
    definitions.sync_all()
    seeding.seed(SAGAS, batch_size=2000, rng_seed=11)
    totals.roll_up()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bpm_sagainstance, bpm_steprun, bpm_sagaevent")
        cursor.execute("SET LOCAL enable_seqscan = off")
    client.force_login(django_user_model.objects.create_superuser("plans", password=None))
    stuck = SagaInstance.objects.filter(status=SagaStatus.STUCK).first()
    assert stuck is not None
    oldest = SagaDefinition.objects.filter(name="place_order").order_by("version").first()
    assert oldest is not None
    deep_row = SagaInstance.objects.order_by("-created_at", "-id")[SAGAS * 9 // 10]
    return {
        "client": client,
        "stuck": stuck,
        "version": oldest.version,
        "deep": keyset.encode(ORDERINGS["-created"], deep_row, backwards=False),
    }


def test_every_page_reads_the_big_tables_through_the_index_meant_for_it(
    seeded: dict[str, Any],
) -> None:
    stuck, key = seeded["stuck"], seeded["stuck"].business_key
    group = causes.stuck_groups()[0].url.split("?", 1)[1]
    prefix = stuck.id.hex[:8]
    created = "bpm_sagainstance_created_at"
    pages = {
        # url: indexes its plans must use (each query scanning no big table)
        # The trends' step failure rates: the day's sagas (saga_updated), then their runs.
        "/admin/dashboard/": {
            "saga_unfinished_status",
            "saga_updated",
            "saga_status_updated",
            "bpm_steprun_saga_id",
        },
        "/admin/dashboard/definitions/": {"saga_unfinished_status", "saga_updated"},
        "/admin/dashboard/definitions/place_order/": {"saga_unfinished_status"},
        "/admin/dashboard/sagas/": {created},
        "/admin/dashboard/sagas/?status=STUCK": {"saga_status_created"},
        "/admin/dashboard/sagas/?definition=place_order": {"saga_definition_created"},
        f"/admin/dashboard/sagas/?definition=place_order&version={seeded['version']}": {
            "saga_version_created"
        },
        "/admin/dashboard/sagas/?reason=TIMED_OUT": {"saga_reason_created"},
        "/admin/dashboard/sagas/?sort=updated": {"saga_updated"},
        "/admin/dashboard/sagas/?status=STUCK&sort=-updated": {"saga_status_updated"},
        f"/admin/dashboard/sagas/?q={prefix}": {"bpm_sagainstance_pkey"},
        f"/admin/dashboard/sagas/?q={key}": {"saga_business_key"},
        # An overview group's link to its sagas.
        f"/admin/dashboard/sagas/?{group}": {"saga_stuck_cause"},
        f"/admin/dashboard/sagas/?cursor={seeded['deep']}": {created},
        f"/admin/dashboard/sagas/{stuck.id}/": {
            "bpm_sagainstance_pkey",
            "bpm_steprun_saga_id",
            "event_saga_at",
        },
        "/api/v1/sagas/": {created},
        "/api/v1/sagas/?status=STUCK": {"saga_status_created"},
        f"/api/v1/sagas/?business_key={key}": {"saga_business_key"},
        f"/api/v1/sagas/{stuck.id}/": {"bpm_sagainstance_pkey", "bpm_steprun_saga_id"},
        f"/api/v1/sagas/{stuck.id}/events/": {"event_saga_at"},
        ADMIN: {created},
        f"{ADMIN}?status__exact=COMPLETED": {"saga_status_created"},
        f"{ADMIN}?p=30": {created},
        f"{ADMIN}?q={prefix}": {"bpm_sagainstance_pkey", "saga_business_key"},
        f"{ADMIN}?q={key}": {"saga_business_key", "saga_input_search", "saga_context_search"},
        f"{ADMIN}{stuck.id}/change/": {"bpm_sagainstance_pkey", "event_saga_at"},
    }
    problems = []
    for url, expected in pages.items():
        plans = plans_of(seeded["client"], url)
        for sql, plan in plans:
            scanned = re.findall(r"Seq Scan on (\w+)", plan)
            if any(table in BIG_TABLES for table in scanned):
                problems.append(f"{url}: a sequential scan of {scanned}\n{sql}\n{plan}")
        used = "\n".join(plan for _, plan in plans)
        missing = [index for index in expected if index not in used]
        if missing:
            problems.append(f"{url}: does not use {missing}\n{used}")
    assert not problems, "\n\n".join(problems)


def test_the_sweepers_queries_use_the_partial_indexes_of_unfinished_rows(
    seeded: dict[str, Any],
) -> None:
    from bpm import sweeper

    with CaptureQueriesContext(connection) as captured:
        sweeper.sweep_once()
    used = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if sql.lstrip().upper().startswith("SELECT") and "bpm_steprun" in sql:
                cursor.execute(f"EXPLAIN {sql}")
                used.append("\n".join(row[0] for row in cursor.fetchall()))
    plans = "\n".join(used)
    assert "steprun_pending_due" in plans
    assert "steprun_running_lease" in plans
    assert "Seq Scan on bpm_steprun" not in plans


def test_every_branch_of_the_search_can_use_an_index(seeded: dict[str, Any]) -> None:
    """Each way of searching, alone: a selective term is found through its index, never a scan.

    (On a page, a common term is better found by walking the list's own order until a page is
    full: the planner chooses, and test_every_page_reads_the_big_tables_through_the_index_meant_
    for_it checks no page scans the table.)
    """
    done = SagaInstance.objects.filter(
        status=SagaStatus.COMPLETED, definition_name="place_order"
    ).first()
    assert done is not None
    # The seeded email is in the input, or (place_order takes no extra keys) in the context.
    email = done.input.get("customer_email") or next(iter(done.context.values()))["customer_email"]
    searches = {
        email: {"saga_input_search", "saga_context_search"},
        "payment_method=card_flaky": {"saga_input_search", "saga_context_search"},
        "create_order.order_id=97101996": {"saga_input_search", "saga_context_search"},
        "mailbox vanished": {"saga_stuck_error_search"},
        seeded["stuck"].id.hex[:8]: {"bpm_sagainstance_pkey"},
    }
    problems = []
    with connection.cursor() as cursor:
        for term, expected in searches.items():
            query = SagaInstance.objects.filter(search(term)).order_by().values("id")
            sql, params = query.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            if "Seq Scan on bpm_sagainstance" in plan:
                problems.append(f"{term}: a sequential scan\n{plan}")
            missing = [index for index in expected if index not in plan]
            if missing:
                problems.append(f"{term}: does not use {missing}\n{plan}")
    assert not problems, "\n\n".join(problems)
