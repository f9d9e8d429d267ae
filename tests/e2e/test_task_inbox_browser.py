"""A reviewer completes review_large_order's human task in a real browser, a real worker running
the saga before and after, through the dashboard served by runserver with DEBUG on and off."""

from __future__ import annotations

import re

import pytest
from factories import UserFactory
from playwright.sync_api import Page, expect
from testkit import fresh

from bpm import engine, services
from bpm.models import EventType, SagaInstance, SagaStatus, StepStatus
from demo import sagas as demo_sagas
from payments.models import Payment
from payments.services import customer_create

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "secret-password"
INBOX = "/admin/dashboard/tasks/"


@pytest.fixture(params=["true", "false"], ids=["debug-on", "debug-off"])
def processes(processes, request, monkeypatch):
    """The conftest's process starter, with the web server's DEBUG on or off."""
    monkeypatch.setenv("DEBUG", request.param)
    if request.param == "false":
        monkeypatch.setenv("SECRET_KEY", "a-test-secret-key-that-is-long-enough-for-django-checks")
        monkeypatch.setenv("ALLOWED_HOSTS", "127.0.0.1,localhost")
        monkeypatch.setenv("BPM_SSL_REDIRECT", "false")
        # The worker mails the confirmation: no SMTP server here (DEBUG off would use one).
        monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    return processes


@pytest.fixture
def waiting_review(processes, wait_for) -> SagaInstance:
    """Return a large order a real worker brought to its review task (fraud desk, warehouse)."""
    margaret = customer_create(name="Margaret", email="m@example.com", credit_limit="100000")
    processes.worker("worker-1")
    saga = services.saga_start(
        definition=demo_sagas.NAME,
        input={
            "customer_id": margaret.pk,
            "products": [3],
            "total": "1500.00",
            "payment_method": "credit_card",
        },
        actor="test",
        business_key="large-order-for-margaret",
    )
    engine.receive_signal(saga.pk, demo_sagas.WAREHOUSE_SIGNAL, {"bin": "A7"}, actor="test")

    def at_review() -> bool:
        return saga.step_runs.filter(step__name="review", status=StepStatus.WAITING).exists()

    wait_for(at_review, message="the saga to wait for its review")
    return fresh(saga)


def log_in(page: Page, username: str, then: str) -> None:
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(then)


def test_a_reviewer_claims_and_completes_the_review_and_the_order_is_paid(
    page: Page, waiting_review: SagaInstance, wait_for
):
    UserFactory(username="rita", groups=["reviewers", "viewers"])
    log_in(page, "rita", "/admin/dashboard/")
    tasks = page.get_by_role("region", name="Your task inbox")
    expect(tasks.locator(".overview-tasks-open")).to_have_text("1")
    tasks.get_by_role("link", name=re.compile("open task")).click()
    expect(page).to_have_url(INBOX)
    page.get_by_role("link", name="Review a large order").click()

    page.get_by_role("button", name="Claim").click()
    expect(page.locator(".task-status")).to_have_text("claimed by you")
    assert not Payment.objects.exists()

    # No risk chosen: the server says so next to the field, and nothing moves.
    page.get_by_role("button", name="Complete").click()
    expect(page.locator(".task-complete")).to_contain_text("This field is required.")
    assert fresh(waiting_review).status == SagaStatus.RUNNING

    page.get_by_label("Risk").select_option("low")
    page.get_by_label("Note").fill("known customer, checked by phone")
    page.get_by_label("Call the customer before shipping").check()
    page.get_by_role("button", name="Complete").click()
    expect(page).to_have_url(INBOX)
    expect(page.locator(".task-none")).to_be_visible()

    wait_for(
        lambda: fresh(waiting_review).status == SagaStatus.COMPLETED,
        message="the payment, approval and confirmation after the review",
    )
    saga = fresh(waiting_review)
    assert saga.context["review"] == {
        "risk": "low",
        "note": "known customer, checked by phone",
        "call_customer": True,
    }
    assert Payment.objects.count() == 1
    assert saga.events.filter(type=EventType.TASK_COMPLETED, actor="user:rita").exists()
