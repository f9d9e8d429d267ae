"""Every page works under the Content-Security-Policy in a real browser, with DEBUG on and off."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect
from testkit import FAST, declare, drain, fresh

from bpm import services
from bpm.declarations import RETRIABLE
from bpm.declarations import StepDeclaration as Step
from bpm.models import SagaStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password-1"
# A long random-looking key: `check --deploy` refuses short or django-insecure- keys.
PRODUCTION_SECRET_KEY = "test-only-9f2c7e41b8d6a3f05e7c2b9d4a1f8e6c3b7d2a9f5e1c8b4d7a3f6e2c9b5d1a8"

PAGES = [
    "/admin/",
    "/admin/dashboard/",
    "/admin/dashboard/sagas/",
    "/admin/dashboard/definitions/",
    "/admin/bpm/sagainstance/",
    "/admin/bpm/sagadefinition/add/",
    "/admin/auth/user/",
]

ENVIRONMENTS = {
    "debug-on": {"DEBUG": "true"},
    "debug-off": {
        "DEBUG": "false",
        "SECRET_KEY": PRODUCTION_SECRET_KEY,
        "ALLOWED_HOSTS": "localhost",
        # Plain HTTP in the test: no redirect, no HSTS (cookies stay Secure; localhost is trusted).
        "BPM_SSL_REDIRECT": "false",
        "BPM_HSTS_SECONDS": "0",
    },
}


# ReDoc's bundle always shows its vendor's logo from cdn.redoc.ly; nothing here may come from the
# internet, so the policy blocks that image on purpose.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def csp_violation(text: str) -> list[str]:
    """Return [text] when a console message reports a CSP violation other than the one expected."""
    if "Content Security Policy" not in text or REDOCLY_LOGO in text:
        return []
    return [text]


def visit(page, url: str, violations: list[str]) -> None:
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.status == 200, (url, response and response.status)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Violations also fire this event; the console message below is what chromium logs.
    page.wait_for_timeout(300)
    assert violations == [], url


def stuck_saga(world):
    """Return a saga stuck on its last step, out of retries, so it offers the operator actions."""
    definition = declare(
        "csp_stuck",
        Step("a", "test.remote", "test.remote", retry=FAST),
        Step("b", "test.remote", retry=FAST, kind=RETRIABLE),
    )
    world.will("b", "fault", "fault", "fault")
    saga = services.saga_start(definition=definition.name, input={"n": 1}, actor="test")
    drain()
    assert fresh(saga).status == SagaStatus.STUCK
    return saga


def check_the_action_panel(page, base: str, saga) -> None:
    """Open an action's panel (htmx), see the JSON editor check as one types, and cancel."""
    page.goto(f"{base}/admin/dashboard/sagas/{saga.id}/", wait_until="networkidle")
    page.get_by_role("link", name="Retry with edited input").click()
    panel = page.locator("#saga-action-panel")
    note = panel.locator("#id_input-check")
    # The script arrives after htmx swapped the panel in: wait for its verdicts.
    expect(note).to_contain_text("Valid JSON")
    panel.get_by_label("Input").fill("{not json")
    expect(note).to_contain_text("Not valid JSON")
    panel.get_by_role("button", name="Cancel").click()
    page.wait_for_function("!document.querySelector('#saga-action-panel').children.length")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_page_reports_a_csp_violation(runserver, browser, environment, the_world):
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    saga = stuck_saga(the_world)
    base = runserver(**ENVIRONMENTS[environment])
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.extend(csp_violation(message.text)))
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    definition = f"/admin/dashboard/definitions/{saga.definition_name}/"
    for path in [*PAGES, definition, f"/admin/dashboard/sagas/{saga.id}/"]:
        visit(page, base + path, violations)
    check_the_action_panel(page, base, saga)
    visit(page, f"{base}/api/docs/", violations)
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "bpm API" in page.inner_text(".swagger-ui .info .title")
    visit(page, f"{base}/api/redoc/", violations)
    page.wait_for_selector("h1", timeout=30_000)
    assert "bpm API" in page.inner_text("h1")
    assert violations == []
    context.close()
