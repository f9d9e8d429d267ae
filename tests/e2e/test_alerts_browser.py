"""Issue 11, item 3 in a real browser: an operator defines a webhook alert rule in the dashboard,
a saga gets stuck on a real worker, and the signed alert arrives at a local webhook receiver.
runserver with DEBUG on and off; a real worker and sweeper deliver and evaluate."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator

import pytest
from factories import UserFactory
from playwright.sync_api import Page, expect
from testkit import fresh
from webhook_receiver import Receiver, start_receiver

from bpm import definitions, services
from bpm.models import AlertNotice, SagaStatus
from orders.sagas import place_order
from payments.services import customer_create

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "secret-password"
ALERTS = "/admin/dashboard/alerts/"


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.BPM_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    found, server = start_receiver()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["true", "false"], ids=["debug-on", "debug-off"])
def processes(processes, request, monkeypatch):
    """The conftest's process starter, with DEBUG on or off; webhooks may call 127.0.0.1."""
    monkeypatch.setenv("BPM_HTTP_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("DEBUG", request.param)
    if request.param == "false":
        monkeypatch.setenv("SECRET_KEY", "a-test-secret-key-that-is-long-enough-for-django-checks")
        monkeypatch.setenv("ALLOWED_HOSTS", "127.0.0.1,localhost")
        # Plain HTTP on loopback: no redirect to HTTPS (Chromium keeps Secure cookies there).
        monkeypatch.setenv("BPM_SSL_REDIRECT", "false")
    return processes


def log_in(page: Page, username: str, then: str) -> None:
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(then)


def test_an_operators_webhook_rule_sends_a_signed_alert_when_a_saga_gets_stuck(
    page: Page, processes, receiver: Receiver, wait_for
):
    definitions.sync_declaration(place_order(backoff_scale=0.02))
    UserFactory(username="olga", groups=["operators"])
    log_in(page, "olga", ALERTS)

    # A URL outside the allowed hosts is refused with the reason, whatever DEBUG says.
    page.get_by_label("Name:", exact=True).fill("orders stuck")
    page.get_by_label("Definition").select_option("place_order")
    page.get_by_role("radio", name="webhook").check()
    page.get_by_label("Webhook URL:").fill("http://169.254.169.254/latest/meta-data/")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator(".alert-new .errorlist")).to_contain_text(
        "169.254.169.254 is not listed in BPM_HTTP_ALLOWED_HOSTS"
    )

    page.get_by_label("Webhook URL:").fill(receiver.url)
    page.get_by_role("button", name="Add rule").click()
    expect(page).to_have_url(re.compile(r"/admin/dashboard/alerts/\d+/$"))
    secret = page.locator(".alert-secret-value").inner_text().strip()
    assert len(secret) == 64
    expect(page.locator(".alert-state")).to_have_text("quiet")

    processes.worker("worker-1")
    processes.sweeper()
    barbara = customer_create(name="Barbara", email="barbara@bounce.invalid", credit_limit="500")
    saga = services.saga_start(
        definition="place_order",
        input={
            "customer_id": barbara.id,
            "products": [7],
            "total": "42.50",
            "payment_method": "credit_card",
        },
        actor="test",
    )
    wait_for(lambda: fresh(saga).status == SagaStatus.STUCK, message="the saga to get stuck")
    wait_for(lambda: len(receiver.received) >= 1, message="the alert at the webhook receiver")

    fired = receiver.received[0]
    timestamp = fired.headers["X-BPM-Timestamp"]
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + fired.body, hashlib.sha256
    ).hexdigest()
    assert fired.headers["X-BPM-Signature"] == f"v1={expected}"
    assert fired.json["event"] == "alert.fired"
    assert fired.json["rule"]["definition"] == "place_order"
    assert fired.json["stuck"] == 1
    wait_for(lambda: AlertNotice.objects.filter(status="SENT").exists(), message="SENT")

    # The log on the rule's page: fired, delivered with HTTP 200; the secret is not shown again.
    page.reload()
    expect(page.locator(".alert-secret-value")).to_have_count(0)
    expect(page.locator(".alert-state")).to_contain_text("firing since")
    row = page.locator("table.alert-notices tr[data-kind='FIRED']")
    expect(row).to_have_attribute("data-status", "SENT")
    expect(row.locator(".alert-deliveries li")).to_contain_text("delivered (HTTP 200)")
    assert len(receiver.received) == 1
