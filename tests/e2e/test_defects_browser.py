"""Issue 11's defects in a real browser (chromium) against runserver, with DEBUG on and off:
error answers to htmx stay in the page, the overview refreshes under the keyboard and a
selection without losing them, the action notice follows the saga, a viewer is told why there
are no buttons, the newcomer's path, and the pages fit a 1366x768 window in light and dark."""

from __future__ import annotations

import re
from io import StringIO
from urllib.parse import urlsplit

import pytest
from browsing import CONTRAST, DEBUG_ON_AND_OFF, LAPTOP, LIGHT_AND_DARK, log_in, overflow
from django.contrib.auth.models import Group
from django.core.management import call_command
from factories import UserFactory
from playwright.sync_api import Page, expect
from testkit import drain

from bpm import clock, services, sweeper
from bpm.models import SagaInstance, SagaStatus
from demo.management.commands.demo_trickle import SCENARIOS, scenario_of

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
OVERVIEW = "/admin/dashboard/"
SETTLING_MS = 20_000


def saga_path(saga: SagaInstance) -> str:
    return f"/admin/dashboard/sagas/{saga.id}/"


@pytest.fixture
def demo(redis, settings) -> dict[str, SagaInstance]:
    """Return one saga per demo scenario, finished in-process, by scenario: bouncing_email is
    stuck after the pivot, payment_past_deadline before it (the sweeper flagged it)."""
    clock.advance(-120)
    settings.PAYMENTS_GATEWAY_SLOW_SECONDS = 0
    call_command("demo_trickle", count=len(SCENARIOS), interval=0, stdout=StringIO())
    clock.advance(1)
    sweeper.flag_past_deadline()
    drain()
    redis.flushdb()  # doorbells for runs drain() rang itself
    sagas = {scenario_of(saga): saga for saga in SagaInstance.objects.order_by("created_at")}
    assert sagas["bouncing_email"].status == SagaStatus.STUCK
    assert sagas["payment_past_deadline"].status == SagaStatus.STUCK
    return sagas


def open_action(page: Page, label: str) -> None:
    page.get_by_role("group", name="Actions").get_by_role("link", name=label, exact=True).click()
    expect(page.locator("#saga-action-panel").get_by_role("heading", name=label)).to_be_visible()


def still_the_saga_page(page: Page, saga: SagaInstance) -> None:
    expect(page).to_have_url(re.compile(re.escape(saga_path(saga)) + "$"))
    expect(page.get_by_role("navigation", name="Dashboard")).to_be_visible()
    expect(page.locator("#saga-live")).to_have_attribute("data-status", "STUCK")


@DEBUG_ON_AND_OFF
def test_error_answers_to_htmx_actions_render_in_the_panel(page: Page, demo, web_debug):
    saga = demo["bouncing_email"]
    olga = UserFactory(username="olga", groups=["viewers", "operators"])
    log_in(page, "olga", then=saga_path(saga))

    # 400: a reason of blanks passes the browser's check, not the server's.
    open_action(page, "Abort")
    panel = page.locator("#saga-action-panel")
    panel.get_by_label("Reason").fill("   ")
    panel.get_by_role("button", name="Confirm: Abort").click()
    expect(panel.locator(".errorlist")).to_contain_text("A reason is required.")
    still_the_saga_page(page, saga)

    # 403: olga lost the operators group while the confirmation was open.
    open_action(page, "Retry")
    olga.groups.remove(Group.objects.get(name="operators"))
    panel.get_by_label("Reason").fill("trying again")
    panel.get_by_role("button", name="Confirm: Retry").click()
    expect(panel.locator(".saga-forbidden")).to_contain_text("olga may not retry sagas")
    still_the_saga_page(page, saga)

    # 404: the saga went away (archived) while its page was open; the next request says so.
    SagaInstance.objects.filter(pk=saga.pk).delete()
    page.get_by_role("group", name="Actions").get_by_role("link", name="Skip").click()
    expect(page.locator("#dashboard-alert")).to_contain_text("404")
    expect(page.get_by_role("navigation", name="Dashboard")).to_be_visible()


@DEBUG_ON_AND_OFF
def test_a_viewer_is_told_why_there_are_no_buttons_and_a_typed_url_gets_a_styled_403(
    page: Page, demo
):
    saga = demo["payment_past_deadline"]
    UserFactory(username="vera", groups=["viewers"])
    log_in(page, "vera", then=saga_path(saga))
    expect(page.get_by_role("group", name="Actions")).to_have_count(0)
    expect(page.locator(".saga-view-only")).to_contain_text(
        "You can view but not act: operators can retry"
    )
    expect(page.locator(".saga-view-only")).to_contain_text("compensate")

    response = page.goto(f"{saga_path(saga)}compensate/")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="403 Forbidden")).to_be_visible()
    expect(page.locator("[data-error-message]")).to_contain_text(
        "Vera may not compensate sagas: that needs"
    )
    expect(page.locator("#site-name")).to_have_text("bpm — saga orchestrator")
    assert page.evaluate(STYLED), "the 403 page has no admin stylesheet"
    expect(page.get_by_role("link", name="The sagas dashboard")).to_be_visible()


STYLED = """() => [...document.styleSheets].some(
    sheet => (sheet.href || "").endsWith("/admin/css/base.css") && sheet.cssRules.length
)"""


@DEBUG_ON_AND_OFF
def test_the_overview_refresh_keeps_focus_and_selection_and_announces_new_stuck_sagas(
    page: Page, demo
):
    UserFactory(username="olga", groups=["operators"])
    log_in(page, "olga", then=OVERVIEW)
    stuck = page.locator("section.overview-stuck")
    before = SagaInstance.objects.filter(status=SagaStatus.STUCK).count()
    expect(stuck.locator("tr[data-stuck-saga]")).to_have_count(before)

    # The keyboard on the first stuck saga's link; a selection in the activity table.
    link = stuck.locator("a.saga-link").first
    link.focus()
    page.evaluate(SELECT_FIRST_ACTIVITY_LABEL)
    selected = page.evaluate("String(window.getSelection())")
    assert selected

    # A new stuck saga arrives (a slow payment past its deadline) and the page refreshes.
    another = services.saga_start(
        definition="place_order",
        input=demo["payment_past_deadline"].input,
        actor="test",
        business_key="late-order",
        deadline=clock.now(),
    )
    clock.advance(1)
    sweeper.flag_past_deadline()
    expect(stuck.locator("tr[data-stuck-saga]")).to_have_count(before + 1, timeout=SETTLING_MS)
    expect(page.locator("#overview-news")).to_contain_text("1 new stuck saga")
    expect(stuck.locator(f"tr[data-stuck-saga='{another.id}']")).to_be_visible()

    page.wait_for_timeout(5_500)  # one more refresh with nothing new
    assert link.evaluate("element => element === document.activeElement")
    assert page.evaluate("String(window.getSelection())") == selected
    assert page.locator("section.overview-activity").evaluate(SELECTION_INSIDE)


SELECT_FIRST_ACTIVITY_LABEL = """() => {
    const cell = document.querySelector("section.overview-activity tbody th");
    const range = document.createRange();
    range.selectNodeContents(cell);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
}"""
SELECTION_INSIDE = """section => {
    const selection = window.getSelection();
    return selection.rangeCount > 0 && section.contains(selection.getRangeAt(0).startContainer);
}"""


def test_the_action_notice_follows_the_saga_until_it_settles(page: Page, demo, processes):
    saga = demo["payment_past_deadline"]
    processes.worker("worker-1", PAYMENTS_GATEWAY_SLOW_SECONDS="0")
    UserFactory(username="olga", groups=["operators"])
    log_in(page, "olga", then=saga_path(saga))

    open_action(page, "Retry")
    panel = page.locator("#saga-action-panel")
    expect(panel.locator(".saga-outcome")).to_have_attribute("data-outcome", "COMPLETED")
    panel.get_by_label("Reason").fill("the gateway is fast again")
    panel.get_by_role("button", name="Confirm: Retry").click()
    notice = page.locator("#saga-notice")
    expect(notice).to_contain_text("Retry applied.")
    expect(page.locator("#saga-live")).to_have_attribute(
        "data-status", "COMPLETED", timeout=SETTLING_MS
    )
    expect(notice).to_contain_text("The saga is now COMPLETED.")
    expect(notice).not_to_contain_text("now RUNNING")


@DEBUG_ON_AND_OFF
def test_a_newcomer_finds_the_dashboard_the_logins_and_nothing_leaves_the_machine(
    page: Page, web_debug: bool, live_url: str
):
    UserFactory(username="operator", groups=["operators"])
    page.goto("/admin/login/")
    expect(page).to_have_title(re.compile(r"bpm$"))
    expect(page.locator(".development-logins")).to_have_count(1 if web_debug else 0)
    if web_debug:
        expect(page.locator(".development-logins")).to_contain_text("operator")

    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("secret-password")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/admin/")
    page.locator(".site-dashboard-link").get_by_role("link", name="Sagas dashboard").click()
    expect(page).to_have_url(OVERVIEW)

    icon = page.request.get("/favicon.ico")
    assert icon.ok and icon.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")

    # Every request the documentation pages make goes to this server.
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for path in ("/api/redoc/", "/api/docs/"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    expect(page.locator(".swagger-ui")).to_be_visible()
    here = urlsplit(live_url).netloc
    elsewhere = [
        url
        for url in requested
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != here
    ]
    assert requested and elsewhere == []


PAGES = (
    "/admin/dashboard/",
    "/admin/dashboard/sagas/",
    "/admin/dashboard/definitions/",
    "/admin/bpm/sagainstance/",
    "/admin/payments/payment/",
    "/admin/bpm/sagadefinition/add/",
)


@LAPTOP
@LIGHT_AND_DARK
def test_pages_fit_a_laptop_and_status_pills_are_readable(page: Page, demo, color_scheme):
    page.emulate_media(color_scheme=color_scheme)
    UserFactory(username="dora", groups=["operators", "designers"])
    log_in(page, "dora", then=OVERVIEW)
    for path in (*PAGES, saga_path(demo["bouncing_email"])):
        page.goto(path)
        assert overflow(page) <= 0, f"{path} is {overflow(page)} px too wide at 1366"
        results = page.locator("#changelist .results")
        if results.count():
            hidden = results.evaluate("element => element.scrollWidth - element.clientWidth")
            assert hidden <= 0, f"{path}: {hidden} px of the list's columns are hidden"

    page.goto(OVERVIEW)
    for pill in page.locator(".overview-counts thead .status-badge").all():
        assert pill.evaluate(CONTRAST) >= 4.5, f"{pill.inner_text()} in {color_scheme}"
    compensated = page.locator(".overview-counts thead .status-compensated")
    assert compensated.evaluate(PILL_STANDS_OUT) >= 1.3

    link = page.locator("a.saga-link").first
    colours = link.evaluate(
        "a => [getComputedStyle(a.querySelector('code')).color, getComputedStyle(a).color,"
        " getComputedStyle(a.querySelector('code')).textDecorationLine"
        " || getComputedStyle(a).textDecorationLine]"
    )
    assert colours[0] == colours[1], colours  # the id takes the link's colour, not code's grey
    assert "underline" in link.evaluate("a => getComputedStyle(a).textDecorationLine")


# The contrast between a pill's background and what is behind it (1: invisible).
PILL_STANDS_OUT = """pill => {
    const rgb = value => value.match(/[\\d.]+/g).map(Number);
    const opaque = colour => colour.length < 4 || colour[3] > 0.5;
    const luminance = ([r, g, b]) => {
        const channel = c => {
            c /= 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    let node = pill.parentElement;
    while (node && !opaque(rgb(getComputedStyle(node).backgroundColor))) node = node.parentElement;
    const behind = node ? rgb(getComputedStyle(node).backgroundColor) : [255, 255, 255];
    const [a, b] = [luminance(rgb(getComputedStyle(pill).backgroundColor)), luminance(behind)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""
