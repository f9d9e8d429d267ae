"""The operators' dashboard in a real browser (chromium), against runserver and real workers.

Set BPM_SCREENSHOTS=docs/screenshots to also write the README's screenshots there; every run
writes them to the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from factories import UserFactory
from playwright.sync_api import FloatRect, Locator, Page, expect
from rq import Worker
from testkit import drain, fresh

from bpm import clock, definitions, services
from bpm.models import EventType, SagaInstance, SagaStatus
from demo.management.commands.demo_trickle import SCENARIOS, scenario_of
from notifications.models import Notification
from orders.sagas import place_order
from payments.services import customer_create

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "secret-password"
OVERVIEW = "/admin/dashboard/"
DEFINITIONS = "/admin/dashboard/definitions/"
# Long enough for a saga to finish on a real worker once an operator has retried it.
SETTLING_MS = 20_000


def saga_path(saga: SagaInstance) -> str:
    return f"/admin/dashboard/sagas/{saga.id}/"


def log_in(page: Page, username: str, then: str = OVERVIEW) -> None:
    """Open `then` logged out, which leads to the admin's login form, and log in there."""
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(then)


def timeline_bars(page: Page, lane: str, outcome: str = "") -> Locator:
    """Return the timeline's attempt bars in a lane ("step:DIRECTION"), of one outcome if given."""
    having = f"[data-outcome='{outcome}']" if outcome else ""
    return page.locator(f"svg.saga-timeline .timeline-bar[data-lane='{lane}']{having}")


def event_rows(page: Page, event_type: str) -> Locator:
    return page.locator(f"table.saga-events tr[data-type='{event_type}']")


def shoot(page: Page, name: str, tmp_path: Path, down_to: Locator | None = None) -> None:
    """Save a screenshot of the whole page, or of its top down to an element, to the test's
    directory and, when set, to $BPM_SCREENSHOTS."""
    clip = None
    if down_to is not None:
        box = down_to.bounding_box()
        assert box is not None, f"{down_to} is not on the page"
        width = page.viewport_size["width"] if page.viewport_size else 1280
        clip = FloatRect(x=0, y=0, width=width, height=box["y"] + box["height"] + 16)
    targets = [tmp_path]
    if os.getenv("BPM_SCREENSHOTS"):
        targets.append(Path(os.environ["BPM_SCREENSHOTS"]))
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=target / f"{name}.png", full_page=True, clip=clip)


@pytest.fixture
def stuck_order(processes, wait_for) -> SagaInstance:
    """Return a place_order saga that a real worker left STUCK: its confirmation bounced.

    The saga runs a version of place_order whose backoffs are a fiftieth of the real ones, so the
    five attempts of send_confirmation take a few seconds. The worker stays up for what follows.
    """
    definitions.sync_declaration(place_order(backoff_scale=0.02))
    barbara = customer_create(name="Barbara", email="barbara@bounce.invalid", credit_limit="500")
    processes.worker("worker-1")
    saga = services.saga_start(
        definition="place_order",
        input={
            "customer_id": barbara.id,
            "products": [7],
            "total": "42.50",
            "payment_method": "credit_card",
        },
        actor="test",
        business_key="order-for-barbara",
    )
    wait_for(lambda: fresh(saga).status == SagaStatus.STUCK, message="the confirmation to bounce")
    return fresh(saga)


@pytest.fixture
def demo_sagas(redis, settings) -> dict[str, SagaInstance]:
    """Return one finished saga per demo scenario (approved, rejected, retried, stuck...), by name.

    They run in-process on the real definitions, the fake clock jumping over backoffs; it starts
    two minutes back so that every timestamp is in the past for the web server.
    """
    clock.advance(-120)
    settings.PAYMENTS_GATEWAY_SLOW_SECONDS = 0
    call_command("demo_trickle", count=len(SCENARIOS), interval=0, stdout=StringIO())
    drain()
    # Doorbells the engine scheduled for runs that drain() rang itself: stale, so drop them.
    redis.flushdb()
    return {scenario_of(saga): saga for saga in SagaInstance.objects.all()}


def test_an_operator_retries_a_stuck_saga_found_on_the_overview_and_sees_it_complete(
    page: Page, stuck_order: SagaInstance
):
    UserFactory(username="olga", groups=["operators"])
    log_in(page, "olga")

    stuck = page.get_by_role("region", name=re.compile(r"^Stuck sagas"))
    # The saga is linked twice: as its cause group's newest example, and in the stuck table.
    stuck.get_by_role("table").get_by_role("link", name=str(stuck_order.id)[:8]).click()
    expect(page).to_have_url(saga_path(stuck_order))
    expect(page.locator("#saga-live")).to_have_attribute("data-status", "STUCK")

    # The timeline: four bounced attempts retried, the fifth out of retries.
    expect(timeline_bars(page, "send_confirmation:FORWARD", "retried")).to_have_count(4)
    expect(timeline_bars(page, "send_confirmation:FORWARD", "exhausted")).to_have_count(1)
    failures = event_rows(page, EventType.ATTEMPT_FAILED)
    expect(failures).to_have_count(4)
    expect(failures.first).to_contain_text("refused barbara@bounce.invalid")

    page.get_by_role("link", name="Retry with edited input").click()
    panel = page.locator("#saga-action-panel")
    expect(panel.get_by_role("heading", name="Retry with edited input")).to_be_visible()
    expect(panel.locator(".saga-plan")).to_contain_text("send_confirmation")
    confirm = panel.get_by_role("button", name="Confirm: Retry with edited input")

    # No reason, no retry: the browser refuses to submit the form.
    confirm.click()
    reason = panel.get_by_label("Reason")
    assert reason.evaluate("field => field.validationMessage")
    assert fresh(stuck_order).status == SagaStatus.STUCK

    # The confirmation goes to the address take_payment recorded: corrected in the context.
    paid = {**stuck_order.context["take_payment"], "customer_email": "barbara@example.com"}
    panel.get_by_label("Context").fill(json.dumps({"take_payment": paid}, indent=2))
    reason.fill("Barbara gave a new address on the phone")
    confirm.click()

    expect(page.locator("#saga-live")).to_have_attribute(
        "data-status", "COMPLETED", timeout=SETTLING_MS
    )
    retry = event_rows(page, EventType.OPERATOR_RETRY)
    expect(retry).to_have_count(1)
    expect(retry).to_contain_text("user:olga")
    expect(retry).to_contain_text("Barbara gave a new address on the phone")
    expect(timeline_bars(page, "send_confirmation:FORWARD").last).to_have_attribute(
        "data-outcome", "succeeded"
    )
    assert Notification.objects.get(saga_id=stuck_order.id).recipient == "barbara@example.com"


def test_a_viewer_sees_no_action_buttons_and_a_forged_post_is_refused(
    page: Page, demo_sagas: dict[str, SagaInstance]
):
    stuck = demo_sagas["bouncing_email"]
    UserFactory(username="vera", groups=["viewers"])
    log_in(page, "vera", then=saga_path(stuck))
    expect(page.locator("#saga-live")).to_have_attribute("data-status", "STUCK")
    expect(page.get_by_role("group", name="Actions")).to_have_count(0)
    expect(page.get_by_role("link", name="Retry")).to_have_count(0)

    # What a tampered page would send: the session's own CSRF token, so only permissions refuse.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    action = f"{saga_path(stuck)}retry/"
    forged = {"reason": "I can do this", "csrfmiddlewaretoken": token}
    headers = {"X-CSRFToken": token, "Referer": page.url}
    as_form = page.request.post(action, form=forged, headers=headers)
    as_htmx = page.request.post(action, form=forged, headers={**headers, "HX-Request": "true"})

    assert as_form.status == 403
    assert as_htmx.status == 403
    assert "vera may not retry sagas" in as_htmx.text()
    assert fresh(stuck).status == SagaStatus.STUCK
    assert not stuck.events.filter(type=EventType.OPERATOR_RETRY).exists()


def test_the_dashboard_follows_the_admin_theme_in_light_and_dark(
    page: Page, demo_sagas: dict[str, SagaInstance], processes, redis, wait_for, tmp_path: Path
):
    processes.worker("worker-1")
    wait_for(lambda: Worker.count(connection=redis) == 1, message="the worker to register")
    UserFactory(username="olga", groups=["operators"])
    log_in(page, "olga")
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        page.emulate_media(color_scheme=scheme)
        for name, path, down_to in (
            ("overview", OVERVIEW, None),
            ("saga", saga_path(demo_sagas["bouncing_email"]), ".saga-timeline-legend"),
            ("definitions", DEFINITIONS, None),
        ):
            page.goto(path)
            expect(page.get_by_role("navigation", name="Dashboard")).to_be_visible()
            assert page.evaluate(DASHBOARD_CSS_LOADED), f"{path}: dashboard.css did not load"
            brightness = page.evaluate(BODY_BRIGHTNESS)
            assert (brightness > 0.5) == (scheme == "light"), f"{path} in {scheme}: {brightness}"
            shoot(page, name + suffix, tmp_path, down_to and page.locator(down_to))


# Scripts run in the page: whether the dashboard's stylesheet loaded with rules, and how bright
# the body's background is (0 black to 1 white), which the admin's theme decides.
DASHBOARD_CSS_LOADED = """() => [...document.styleSheets].some(
    sheet => (sheet.href || "").endsWith("/dashboard/dashboard.css") && sheet.cssRules.length
)"""
BODY_BRIGHTNESS = """() => {
    const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""
