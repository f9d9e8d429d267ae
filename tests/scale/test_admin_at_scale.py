"""The admin's saga list at scale: a count that stops at a limit, pages no deeper, and the
dashboard's search (an order id finds its saga in both)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bpm import definitions, seeding
from bpm.admin import paging
from bpm.models import SagaInstance

pytestmark = pytest.mark.django_db

LIST = "/admin/bpm/sagainstance/"


@pytest.fixture
def operator(client: Any, django_user_model: Any) -> Any:
    client.force_login(django_user_model.objects.create_superuser("ops", password=None))
    definitions.sync_all()
    seeding.seed(12, rng_seed=21)
    return client


def test_the_changelist_counts_up_to_the_limit_and_says_there_are_more(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "COUNT_LIMIT", 5)
    with CaptureQueriesContext(connection) as queries:
        response = operator.get(LIST)
    counts = [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()]
    assert len(counts) == 1 and "LIMIT 6" in counts[0]
    assert response.context["cl"].result_count == 5
    assert "5+ saga instances" in response.content.decode()


def test_the_changelist_pages_no_deeper_than_the_limit(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "COUNT_LIMIT", 5)
    monkeypatch.setattr("bpm.admin.sagas.SagaInstanceAdmin.list_per_page", 2)
    assert operator.get(LIST, {"p": 3}).status_code == 200
    # Page 4 would start at row 7, past the 5 counted: the admin's "invalid page" redirect.
    response = operator.get(LIST, {"p": 4})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_a_view_under_the_limit_is_counted_exactly(operator: Any) -> None:
    response = operator.get(LIST)
    assert response.context["cl"].result_count == 12
    assert "12 saga instances" in response.content.decode()


def test_the_admin_and_the_dashboard_find_a_saga_by_its_order_id_or_id_prefix(
    operator: Any,
) -> None:
    saga = SagaInstance.objects.order_by("created_at").first()
    assert saga is not None
    for term in (saga.business_key, saga.id.hex[:8], str(saga.id)[:13] + "…"):
        admin = list(operator.get(LIST, {"q": term}).context["cl"].result_list)
        dashboard = operator.get("/admin/dashboard/sagas/", {"q": term}).context["page"].rows
        assert saga in admin
        assert {row.pk for row in admin} == {row.pk for row in dashboard}


def test_an_id_prefix_search_compares_no_text(operator: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        operator.get(LIST, {"q": "1a2b3c4d"})
    listed = [query["sql"] for query in queries if "bpm_sagainstance" in query["sql"]]
    assert listed and any('"bpm_sagainstance"."id" >=' in sql for sql in listed)
    # The id is a range of the primary key; the only text compared is the stuck error's words.
    compared = [m for sql in listed for m in re.findall(r"(\S+) LIKE", sql, flags=re.IGNORECASE)]
    assert all("stuck_error" in column for column in compared), compared
