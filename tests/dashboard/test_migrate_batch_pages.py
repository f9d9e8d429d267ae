"""The dashboard's migrate batch: preview which sagas can move and why not, then move them."""

from __future__ import annotations

import re

import pytest
from factories import UserFactory
from testkit import FAST, declare, work

from benchmarks.stuck_sagas import seed_stuck
from bpm.declarations import StepDeclaration as Step
from bpm.models import Batch, EventType, SagaEvent, SagaInstance

pytestmark = pytest.mark.django_db(transaction=True)
NEW = "/admin/dashboard/batches/new/"
FILTER = "status=STUCK&definition=parcel&version=1"


def parcel(*steps: Step):
    return declare("parcel", Step("send", "test.local", "test.local", retry=FAST), *steps)


@pytest.fixture
def stuck(the_world):
    """Three parcels stuck on `send` in v1; v2 adds `confirm`, v3 renames `send`."""
    ids = seed_stuck(parcel(), 3, {})
    parcel(Step("confirm", "test.local", "test.local", retry=FAST))
    declare("parcel", Step("post", "test.local", "test.local", retry=FAST))
    return ids


def login(client, group):
    client.force_login(UserFactory(groups=[group]))
    return client


def choices(**more):
    return {"filter": FILTER, "action": "migrate", "target_version": "2", "reason": "", **more}


def test_an_operator_previews_and_moves_the_sagas(client, stuck):
    operator = login(client, "operators")
    form = operator.get(f"{NEW}?{FILTER}&action=migrate&target_version=2").content.decode()
    assert 'name="target_version" value="2"' in form
    preview = operator.post(NEW, choices(preview="Preview")).content.decode()
    assert '<span class="batch-matched">3</span> sagas match' in preview
    assert "move from v1 to v2; run send; run confirm" in preview
    assert "Start: migrate 3 sagas" in preview
    fingerprint = preview.split('name="previewed" value="')[1].split('"')[0]
    no_reason = operator.post(NEW, choices(start="Start", previewed=fingerprint))
    assert b"A reason is required." in no_reason.content and not Batch.objects.exists()
    started = operator.post(NEW, choices(start="Start", previewed=fingerprint, reason="v2"))
    assert started.status_code == 302
    work()
    page = operator.get(started["Location"]).content.decode()
    assert "Target version" in page and "parcel v2" in page
    assert set(SagaInstance.objects.values_list("definition__version", flat=True)) == {2}
    assert SagaEvent.objects.filter(type=EventType.SAGA_MOVED).count() == 3
    timeline = operator.get(f"/admin/dashboard/sagas/{stuck[0]}/").content.decode()
    assert "moved from version 1 to 2 by user:" in timeline


def test_the_preview_says_why_sagas_cannot_move_with_counts(client, stuck):
    operator = login(client, "operators")
    preview = operator.post(NEW, choices(target_version="3", preview="Preview")).content.decode()
    assert "Would be refused" in preview
    assert "cannot move to parcel v3: step send already ran but v3 has no step send" in preview
    assert "<h4>What will run</h4>" not in preview


@pytest.mark.parametrize("version", ["5.0", "two", "9", ""])
def test_a_target_version_that_is_not_one_is_refused(client, stuck, version):
    operator = login(client, "operators")
    response = operator.post(NEW, choices(target_version=version, preview="Preview"))
    assert response.status_code == 400
    assert b"target_version" in response.content or b"no version 9" in response.content
    assert not Batch.objects.exists()


def test_viewers_and_clients_may_not_migrate(client, stuck):
    for group in ("viewers", "clients"):
        user = login(client, group)
        response = user.post(NEW, choices(start="Start", reason="x"))
        assert response.status_code in (302, 403), group
    client.logout()
    assert client.post(NEW, choices(start="Start", reason="x")).status_code == 302
    assert not Batch.objects.exists()


def test_a_published_version_links_operators_to_moving_other_versions_sagas(client, stuck):
    page = login(client, "operators").get("/admin/dashboard/definitions/parcel/?version=2")
    html = page.content.decode()
    assert "Move sagas to v2" in html
    link = (
        f"{NEW}?definition=parcel&amp;version=1&amp;status=STUCK&amp;action=migrate"
        "&amp;target_version=2"
    )
    assert f'<a href="{link}">Move the 3 STUCK sagas of v1…</a>' in html
    form = client.get(link.replace("&amp;", "&")).content.decode()
    assert 'name="target_version" value="2"' in form
    assert re.search(r'<input type="radio" name="action" value="migrate"[^>]* checked', form)
    viewer_page = login(client, "viewers").get("/admin/dashboard/definitions/parcel/?version=2")
    assert "Move sagas to v2" not in viewer_page.content.decode()
