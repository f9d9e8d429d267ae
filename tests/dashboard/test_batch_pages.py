"""The dashboard's batch repair: confirmation with preview, progress, results and cancel."""

from __future__ import annotations

import pytest
from batch_kit import mailing
from django.http import QueryDict
from factories import UserFactory
from testkit import work

from benchmarks.stuck_sagas import seed_stuck
from bpm import batches
from bpm.dashboard.causes import stuck_groups
from bpm.models import Batch, BatchStatus, SagaInstance, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)
NEW = "/admin/dashboard/batches/new/"
FILTER = "status=STUCK&definition=mailing"


@pytest.fixture
def stuck(the_world):
    return seed_stuck(mailing(), 3, {"email": "a@example.com"})


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(username="olga", groups=["operators"]))
    return client


def choices(**more):
    return {"filter": FILTER, "action": "retry", "patch": '{"tier": "gold"}', "reason": "", **more}


def test_the_saga_list_links_operators_to_a_repair_of_every_matching_saga(operator, stuck):
    page = operator.get(f"/admin/dashboard/sagas/?{FILTER}&size=10").content.decode()
    assert f'href="{NEW}?status=STUCK&amp;definition=mailing"' in page


def test_each_overview_group_s_link_selects_exactly_its_sagas_for_a_batch(operator, the_world):
    sagas = {
        "ConnectionError": seed_stuck(mailing(), 3, {"email": "a@example.com"}),
        "MailboxMissing": seed_stuck(
            mailing(), 2, {"email": "a@example.com"}, key="box", code="MailboxMissing"
        ),
        # No error code: the group's link asks for none ("-"), not for any.
        "": seed_stuck(mailing(), 1, {"email": "a@example.com"}, key="none", code=""),
    }
    groups = stuck_groups()
    assert sorted((group.code, group.count) for group in groups) == [
        ("", 1),
        ("ConnectionError", 3),
        ("MailboxMissing", 2),
    ]
    for group in groups:
        query = group.url.split("?", 1)[1]
        form = operator.get(f"{NEW}?{query}").content.decode()
        kept = form.split('name="filter" value="')[1].split('"')[0].replace("&amp;", "&")
        _, selected = batches.selection(QueryDict(kept))
        assert set(selected.values_list("pk", flat=True)) == set(sagas[group.code]), group.url
        preview = operator.post(NEW, {**choices(preview="Preview"), "filter": kept})
        assert f'<span class="batch-matched">{group.count}</span>' in preview.content.decode()


def test_the_preview_shows_the_count_the_plans_and_then_offers_to_start(operator, stuck):
    form = operator.get(f"{NEW}?{FILTER}&sort=created")
    assert (
        form.status_code == 200 and b'value="status=STUCK&amp;definition=mailing"' in form.content
    )
    preview = operator.post(NEW, choices(preview="Preview")).content.decode()
    assert '<span class="batch-matched">3</span> sagas match' in preview
    assert "run send; run confirm" in preview and "Start: retry 3 sagas" in preview
    assert not Batch.objects.exists()


def test_starting_needs_a_reason_and_the_choices_that_were_previewed(operator, stuck):
    preview = operator.post(NEW, choices(preview="Preview")).content.decode()
    fingerprint = preview.split('name="previewed" value="')[1].split('"')[0]
    no_reason = operator.post(NEW, choices(start="Start", previewed=fingerprint))
    assert b"A reason is required." in no_reason.content
    changed = operator.post(NEW, choices(start="Start", previewed="other", reason="relay back"))
    assert changed.status_code == 200 and not Batch.objects.exists()
    started = operator.post(NEW, choices(start="Start", previewed=fingerprint, reason="relay back"))
    batch = Batch.objects.get()
    assert started.status_code == 302 and started["Location"].endswith(f"/batches/{batch.pk}/")
    assert (batch.matched, batch.patch, batch.actor) == (3, {"tier": "gold"}, "user:olga")


def test_the_batch_page_polls_its_progress_while_open_and_stops_when_finished(operator, stuck):
    batch = batches.batch_create(
        query={"status": "STUCK"}, action="abort", reason="gone", actor="t"
    )
    page = operator.get(f"/admin/dashboard/batches/{batch.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in page and '0</span> of <span class="batch-total">3' in page
    work()
    fragment = operator.get(f"/admin/dashboard/batches/{batch.pk}/", headers={"HX-Request": "true"})
    text = fragment.content.decode()
    assert "every 1s" not in text and 'class="batch-done">3<' in text and "<html" not in text
    assert SagaInstance.objects.filter(status=SagaStatus.ABORTED).count() == 3


def test_an_operator_cancels_an_open_batch(operator, stuck):
    batch = batches.batch_create(query={"status": "STUCK"}, action="abort", reason="x", actor="t")
    response = operator.post(f"/admin/dashboard/batches/{batch.pk}/cancel/")
    assert response.status_code == 302
    batch.refresh_from_db()
    assert (batch.status, batch.cancelled_by) == (BatchStatus.CANCELLED, "user:olga")
    again = operator.post(f"/admin/dashboard/batches/{batch.pk}/cancel/")
    assert again.status_code == 409


def test_an_invalid_filter_is_shown_not_raised(operator, stuck):
    response = operator.post(NEW, choices(filter="status=NOPE", preview="1"))
    assert response.status_code == 400 and b"status:" in response.content


def test_a_viewer_is_told_why_and_anonymous_is_sent_to_log_in(client, viewer, stuck):
    batch = batches.batch_create(query={"status": "STUCK"}, action="abort", reason="x", actor="t")
    assert viewer.get(f"{NEW}?{FILTER}").status_code == 403
    assert viewer.post(NEW, choices(preview="1")).status_code == 403
    assert viewer.post(f"/admin/dashboard/batches/{batch.pk}/cancel/").status_code == 403
    assert viewer.get(f"/admin/dashboard/batches/{batch.pk}/").status_code == 200
    assert b"Cancel the batch" not in viewer.get(f"/admin/dashboard/batches/{batch.pk}/").content
    client.logout()
    assert client.get("/admin/dashboard/batches/")["Location"].startswith("/admin/login/")
