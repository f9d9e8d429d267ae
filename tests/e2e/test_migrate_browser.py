"""Moving stuck sagas to a new version in a real browser: from the new version's page, preview,
start the migrate batch (real rqworkers move them), then retry them and see v2's added step run."""

from __future__ import annotations

import re
import sys

import pytest
from django.conf import settings
from factories import UserFactory
from playwright.sync_api import Page, expect

import benchmarks.handlers  # noqa: F401 - registers bench.local, which the workers run
from benchmarks.stuck_sagas import seed_stuck
from bpm import definitions
from bpm.declarations import SagaDeclaration
from bpm.declarations import StepDeclaration as Step
from bpm.models import Batch, BatchStatus, EventType, SagaEvent, SagaInstance, SagaStatus

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
PASSWORD = "secret-password"
SAGAS = 20


def newsletter(*steps: Step):
    definition, _ = definitions.sync_declaration(
        SagaDeclaration(
            name="newsletter",
            title="Newsletter",
            input_schema={"type": "object"},
            steps=(Step("render", "bench.local"), Step("send", "bench.local"), *steps),
        )
    )
    return definition


@pytest.fixture
def stuck_on_v1(processes):
    """20 newsletters stuck on v1's first step; v2 adds `archive`; two real workers."""
    ids = seed_stuck(newsletter(), SAGAS, {}, key="newsletter")
    newsletter(Step("archive", "bench.local"))
    for name in ("worker-1", "worker-2"):
        argv = [sys.executable, "-m", "benchmarks.rqworker", "--with-scheduler", "--name", name]
        processes.run(name, [*argv, *settings.BPM_QUEUES])
    return ids


def test_an_operator_moves_stuck_sagas_to_v2_and_they_run_its_new_step(
    page: Page, stuck_on_v1, wait_for
):
    UserFactory(username="olga", groups=["operators"])
    v2_page = "/admin/dashboard/definitions/newsletter/?version=2"
    page.goto(v2_page)
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(v2_page)

    page.get_by_role("link", name=f"Move the {SAGAS} STUCK sagas of v1…").click()
    expect(page).to_have_url(re.compile(r"/admin/dashboard/batches/new/\?.*action=migrate"))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".batch-matched")).to_have_text(str(SAGAS))
    expect(page.locator("table.batch-plans")).to_contain_text(
        "move from v1 to v2; run render; run send; run archive"
    )
    page.get_by_label("Reason").fill("v2 archives every newsletter")
    page.get_by_role("button", name=f"Start: migrate {SAGAS} sagas").click()
    batch = Batch.objects.get()
    expect(page).to_have_url(f"/admin/dashboard/batches/{batch.pk}/")
    expect(page.locator("#batch-region")).to_have_attribute(
        "data-status", "FINISHED", timeout=120_000
    )
    expect(page.locator(".batch-done")).to_have_text(str(SAGAS))
    expect(page.get_by_text("newsletter v2")).to_be_visible()
    assert SagaEvent.objects.filter(type=EventType.SAGA_MOVED).count() == SAGAS

    page.goto("/admin/dashboard/sagas/?status=STUCK&definition=newsletter&version=2")
    page.get_by_role("link", name="Repair all matching…").click()
    page.get_by_role("button", name="Preview").click()
    page.get_by_label("Reason").fill("continue on v2")
    page.get_by_role("button", name=f"Start: retry {SAGAS} sagas").click()

    def all_completed() -> bool:
        return not SagaInstance.objects.exclude(status=SagaStatus.COMPLETED).exists()

    wait_for(all_completed, timeout=180, message="every moved saga to complete on v2")
    assert Batch.objects.filter(status=BatchStatus.FINISHED).count() == 2
    for saga in SagaInstance.objects.all():
        assert saga.definition.version == 2
        assert set(saga.context) == {"render", "send", "archive"}
