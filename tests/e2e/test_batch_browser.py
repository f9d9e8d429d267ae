"""A batch repair in a real browser, from the overview: the "By cause" group of 200 stuck sagas
leads to the list of exactly those sagas, which are retried with a patch to their input by real
rqworkers, the progress followed (across a reload) until all completed; stuck sagas of another
cause are left alone. runserver runs with DEBUG on and off."""

from __future__ import annotations

import re
import sys

import pytest
from browsing import DEBUG_ON_AND_OFF, log_in
from django.conf import settings
from factories import UserFactory
from playwright.sync_api import Page, expect

import benchmarks.handlers  # noqa: F401 - registers bench.local, which the workers run
from benchmarks.stuck_sagas import seed_stuck
from bpm import definitions
from bpm.declarations import SagaDeclaration
from bpm.declarations import StepDeclaration as Step
from bpm.models import Batch, BatchStatus, SagaInstance, SagaStatus

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SAGAS = 200
# Stuck on the same step of the same version, for another error: the group's error code is all
# that tells them apart, so a batch that dropped it would retry them too.
OTHERS = 3
OVERVIEW = "/admin/dashboard/"
SCHEMA = {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}


@pytest.fixture
def stuck_newsletters(processes):
    """Return 200 `newsletter` sagas stuck on `render` (ConnectionError), 3 stuck on it for
    another cause, and two real workers that run its steps (the benchmark's no-op handlers,
    registered by benchmarks.rqworker)."""
    definition, _ = definitions.sync_declaration(
        SagaDeclaration(
            name="newsletter",
            title="Newsletter",
            input_schema=SCHEMA,
            steps=(Step("render", "bench.local"), Step("send", "bench.local")),
        )
    )
    others = seed_stuck(
        definition,
        OTHERS,
        {"email": "reader@example.com"},
        key="template",
        code="TemplateDoesNotExist",
        error="newsletter.html is missing",
    )
    ids = seed_stuck(definition, SAGAS, {"email": "reader@example.com"}, key="newsletter")
    for name in ("worker-1", "worker-2"):
        argv = [sys.executable, "-m", "benchmarks.rqworker", "--with-scheduler", "--name", name]
        processes.run(name, [*argv, *settings.BPM_QUEUES])
    return {str(pk) for pk in ids}, {str(pk) for pk in others}


@DEBUG_ON_AND_OFF
def test_an_operator_retries_200_filtered_stuck_sagas_with_a_patch_and_sees_them_complete(
    page: Page, stuck_newsletters, wait_for
):
    group_ids, other_ids = stuck_newsletters
    UserFactory(username="olga", groups=["operators"])
    log_in(page, "olga", OVERVIEW)
    expect(page.locator("#stuck-heading")).to_have_text(f"Stuck sagas ({SAGAS + OTHERS})")
    groups = page.locator("ul.stuck-groups li.stuck-group")
    expect(groups).to_have_count(2)
    expect(groups.nth(1)).to_contain_text(f"{OTHERS} stuck on render: newsletter.html is missing")
    group = groups.filter(has_text=f"{SAGAS} stuck on render")
    expect(group).to_contain_text("ConnectionError")
    group.get_by_role("link", name=f"{SAGAS} stuck on render: render is unreachable").click()

    # The list of exactly that group: its step, reason and error code in the address.
    expect(page).to_have_url(
        re.compile(r"/admin/dashboard/sagas/\?status=STUCK&definition=newsletter")
    )
    for param in ("step=render", "reason=RETRIES_EXHAUSTED", "error=ConnectionError"):
        assert param in page.url, page.url
    rows = page.locator("table.saga-table tbody tr")
    expect(rows).to_have_count(50)
    listed = set(rows.evaluate_all("rows => rows.map(row => row.dataset.saga)"))
    assert listed <= group_ids and not listed & other_ids
    expect(page.locator("table.saga-table td[data-cause=error]").first).to_contain_text(
        "ConnectionError"
    )

    page.get_by_role("link", name="Repair all matching…").click()
    expect(page).to_have_url(re.compile(r"/admin/dashboard/batches/new/\?.*error=ConnectionError"))
    page.get_by_label("Patch to the input (retry)").fill('{"tier": "gold"}')
    page.get_by_role("button", name="Preview").click()
    # Every saga of the group, not the page the list showed, and none of the other cause.
    expect(page.locator(".batch-matched")).to_have_text(str(SAGAS))
    expect(page.locator("table.batch-plans")).to_contain_text("run render; run send")
    page.get_by_role("button", name=f"Start: retry {SAGAS} sagas").click()
    expect(page.locator(".errornote")).to_contain_text("correct the error")
    expect(page.locator(".form-row.errors")).to_contain_text("A reason is required.")

    page.get_by_label("Reason").fill("the mail relay is back")
    page.get_by_role("button", name=f"Start: retry {SAGAS} sagas").click()
    batch = Batch.objects.get()
    assert "error=ConnectionError" in batch.filter_query, batch.filter_query
    expect(page).to_have_url(f"/admin/dashboard/batches/{batch.pk}/")
    expect(page.locator(".batch-total")).to_have_text(str(SAGAS))
    page.reload()
    expect(page.locator("progress.batch-progress")).to_have_attribute("max", str(SAGAS))
    expect(page.locator("#batch-region")).to_have_attribute(
        "data-status", "FINISHED", timeout=120_000
    )
    expect(page.locator(".batch-done")).to_have_text(str(SAGAS))
    expect(page.locator(".batch-cancel")).to_have_count(0)

    def all_completed() -> bool:
        return (
            SagaInstance.objects.filter(pk__in=group_ids, status=SagaStatus.COMPLETED).count()
            == SAGAS
        )

    wait_for(all_completed, timeout=180, message="every retried saga to complete")
    assert Batch.objects.get().status == BatchStatus.FINISHED
    assert SagaInstance.objects.filter(input__tier="gold").count() == SAGAS
    others = SagaInstance.objects.filter(pk__in=other_ids)
    assert sorted(others.values_list("status", flat=True)) == [SagaStatus.STUCK] * OTHERS
    assert not others.filter(input__tier="gold").exists()
    page.get_by_role("link", name="done", exact=True).click()
    expect(page.locator("tr[data-item-status='DONE']")).to_have_count(100)
