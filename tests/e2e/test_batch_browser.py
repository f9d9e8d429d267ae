"""A batch repair in a real browser: a filtered list of 200 stuck sagas, retried with a patch to
their input by real rqworkers, the progress followed (across a reload) until all completed.
runserver runs with DEBUG on and off."""

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
from bpm.models import Batch, BatchStatus, SagaInstance, SagaStatus

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "secret-password"
SAGAS = 200
SCHEMA = {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}


@pytest.fixture(params=["true", "false"], ids=["debug-on", "debug-off"])
def processes(processes, request, monkeypatch):
    """The conftest's process starter, with the web server's DEBUG on or off."""
    monkeypatch.setenv("DEBUG", request.param)
    if request.param == "false":
        monkeypatch.setenv("SECRET_KEY", "a-test-secret-key-that-is-long-enough-for-django-checks")
        monkeypatch.setenv("ALLOWED_HOSTS", "127.0.0.1,localhost")
        monkeypatch.setenv("BPM_SSL_REDIRECT", "false")
    return processes


@pytest.fixture
def stuck_newsletters(processes):
    """Return 200 `newsletter` sagas stuck on their first step, and two real workers that
    run its steps (the benchmark's no-op handlers, registered by benchmarks.rqworker)."""
    definition, _ = definitions.sync_declaration(
        SagaDeclaration(
            name="newsletter",
            title="Newsletter",
            input_schema=SCHEMA,
            steps=(Step("render", "bench.local"), Step("send", "bench.local")),
        )
    )
    ids = seed_stuck(definition, SAGAS, {"email": "reader@example.com"}, key="newsletter")
    for name in ("worker-1", "worker-2"):
        argv = [sys.executable, "-m", "benchmarks.rqworker", "--with-scheduler", "--name", name]
        processes.run(name, [*argv, *settings.BPM_QUEUES])
    return ids


def log_in(page: Page, username: str, then: str) -> None:
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(then)


def test_an_operator_retries_200_filtered_stuck_sagas_with_a_patch_and_sees_them_complete(
    page: Page, stuck_newsletters, wait_for
):
    UserFactory(username="olga", groups=["operators"])
    listing = "/admin/dashboard/sagas/?status=STUCK&definition=newsletter&size=10"
    log_in(page, "olga", listing)
    page.get_by_role("link", name="Repair all matching…").click()
    expect(page).to_have_url(re.compile(r"/admin/dashboard/batches/new/\?.*status=STUCK"))

    page.get_by_label("Patch to the input (retry)").fill('{"tier": "gold"}')
    page.get_by_role("button", name="Preview").click()
    # Every page of the list, not the ten it showed.
    expect(page.locator(".batch-matched")).to_have_text("200")
    expect(page.locator("table.batch-plans")).to_contain_text("run render; run send")
    page.get_by_role("button", name="Start: retry 200 sagas").click()
    expect(page.locator(".errornote")).to_contain_text("correct the error")
    expect(page.locator(".form-row.errors")).to_contain_text("A reason is required.")

    page.get_by_label("Reason").fill("the mail relay is back")
    page.get_by_role("button", name="Start: retry 200 sagas").click()
    batch = Batch.objects.get()
    expect(page).to_have_url(f"/admin/dashboard/batches/{batch.pk}/")
    expect(page.locator(".batch-total")).to_have_text("200")
    page.reload()
    expect(page.locator("progress.batch-progress")).to_have_attribute("max", "200")
    expect(page.locator("#batch-region")).to_have_attribute(
        "data-status", "FINISHED", timeout=120_000
    )
    expect(page.locator(".batch-done")).to_have_text("200")
    expect(page.locator(".batch-cancel")).to_have_count(0)

    def all_completed() -> bool:
        return not SagaInstance.objects.exclude(status=SagaStatus.COMPLETED).exists()

    wait_for(all_completed, timeout=180, message="every retried saga to complete")
    assert Batch.objects.get().status == BatchStatus.FINISHED
    assert SagaInstance.objects.filter(input__tier="gold").count() == SAGAS
    page.get_by_role("link", name="done", exact=True).click()
    expect(page.locator("tr[data-item-status='DONE']")).to_have_count(100)
