"""Issue 11, items 5, 7 and 8 in a real browser, with DEBUG on and off: the attempt drawer by
keyboard and by deep link, rerun from a step, assign and comment."""

from __future__ import annotations

import re

import pytest
from factories import UserFactory
from playwright.sync_api import Page, expect
from testkit import drain, fresh, three_steps, with_pivot

from bpm import services
from bpm.models import EventType, SagaEvent, SagaInstance, SagaStatus

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
PASSWORD = "secret-password"
EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture(params=["true", "false"], ids=["debug-on", "debug-off"])
def processes(processes, request, monkeypatch):
    """The conftest's process starter, with the web server's DEBUG on or off."""
    monkeypatch.setenv("DEBUG", request.param)
    if request.param == "false":
        monkeypatch.setenv("SECRET_KEY", "a-test-secret-key-that-is-long-enough-for-django-checks")
        monkeypatch.setenv("ALLOWED_HOSTS", "127.0.0.1,localhost")
        monkeypatch.setenv("BPM_SSL_REDIRECT", "false")
    return processes


def log_in(page: Page, then: str) -> None:
    UserFactory(username="olga", groups=["operators"], password=PASSWORD)
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(then)


def saga_path(saga: SagaInstance) -> str:
    return f"/admin/dashboard/sagas/{saga.id}/"


@pytest.fixture
def retried(the_world) -> SagaInstance:
    the_world.will("b", "fault")
    saga = services.saga_start(definition=three_steps().name, input={"note": EVIL}, actor="t")
    drain()
    return fresh(saga)


def test_the_attempt_drawer_opens_by_keyboard_and_by_deep_link(page: Page, retried):
    log_in(page, saga_path(retried))
    page.get_by_role("button", name="Zoom").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('timeline-bar')"):
            break
    else:
        pytest.fail("no timeline bar took the focus from the keyboard")
    assert page.evaluate("document.activeElement.getAttribute('data-index')") == "1"
    page.keyboard.press("Enter")
    drawer = page.locator("#attempt-drawer")
    expect(drawer).to_be_visible()
    expect(drawer.locator(".attempt-detail-title")).to_contain_text("a → attempt 1")
    expect(page).to_have_url(re.compile(r"#attempt-1$"))
    # The input is shown as text, never run as markup.
    expect(drawer.locator("[data-json='input']")).to_contain_text(EVIL)
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    assert page.evaluate("document.activeElement.getAttribute('data-index')") == "1"
    page.keyboard.press("Tab")
    page.keyboard.press(" ")
    expect(drawer.locator(".attempt-error")).to_contain_text("ConnectionError: b is unreachable")
    expect(drawer.locator(".attempt-worker")).to_contain_text("worker:")

    page.goto(saga_path(retried) + "#attempt-3")
    expect(page.locator("#attempt-drawer .attempt-outcome")).to_have_text("succeeded")
    expect(page.locator("#attempt-drawer [data-json='context-after']")).to_contain_text('"b"')


def test_an_operator_reruns_a_completed_saga_from_a_step(page: Page, the_world):
    saga = services.saga_start(definition=three_steps().name, input={}, actor="t")
    drain()
    log_in(page, saga_path(saga))
    page.get_by_role("link", name="Rerun from a step").click()
    panel = page.locator("#saga-action-panel")
    step = panel.get_by_label("Step")
    # Choose only once htmx has processed the swapped-in select (on a loaded machine a change
    # fired before that asks for nothing).
    step.evaluate("select => new Promise(done => { const ready = () => select['htmx-internal-data']"
                  " ? done(true) : setTimeout(ready, 20); ready(); })")
    step.select_option("b")
    expect(panel.locator(".saga-plan li")).to_have_text(["run b", "run c"])
    panel.get_by_label("Reason").fill("the address was corrected")
    panel.get_by_role("button", name="Confirm: Rerun from a step").click()
    expect(page.locator("#saga-notice")).to_contain_text("Rerun from a step applied")
    assert fresh(saga).status == SagaStatus.RUNNING
    (audit,) = SagaEvent.objects.filter(saga=saga, type=EventType.OPERATOR_RERUN)
    assert audit.actor == "user:olga" and audit.message == "the address was corrected"
    drain()
    assert fresh(saga).status == SagaStatus.COMPLETED


def test_an_operator_takes_a_stuck_saga_and_comments_on_it(page: Page, the_world):
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={}, actor="t")
    drain()
    log_in(page, saga_path(saga))
    page.get_by_role("button", name="Assign to me").click()
    expect(page.locator(".saga-assignee")).to_have_text("olga")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".saga-acknowledged")).to_be_visible()
    page.get_by_label("Comment").fill(f"called the bank {EVIL}")
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator(".saga-comment").last).to_contain_text(f"called the bank {EVIL}")
    expect(page.locator(".timeline-operator[data-type='COMMENTED']")).to_have_count(1)
    page.goto("/admin/dashboard/sagas/?assignee=mine")
    expect(page.locator(f"tr[data-saga='{saga.id}'] .saga-assignee-cell")).to_contain_text("olga")
