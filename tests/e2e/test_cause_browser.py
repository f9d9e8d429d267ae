"""Issue 11, items 1 and 4 in a real browser, with DEBUG on and off: the cause of a stuck saga
above the fold at 1366x768, an overview group leading to exactly its sagas, and the search by
order id and by an input value (the same sagas as the admin's search)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from factories import UserFactory
from playwright.sync_api import Page, expect
from test_browser import demo_sagas  # noqa: F401  (the fixture)

from bpm import clock
from bpm.dashboard.saga_search import search
from bpm.models import SagaInstance, SagaStatus

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "secret-password"
OVERVIEW = "/admin/dashboard/"
SAGAS = "/admin/dashboard/sagas/"
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(params=["true", "false"], ids=["debug-on", "debug-off"])
def processes(processes, request, monkeypatch):
    """The conftest's process starter, with the web server's DEBUG on or off."""
    monkeypatch.setenv("DEBUG", request.param)
    if request.param == "false":
        monkeypatch.setenv("SECRET_KEY", "a-test-secret-key-that-is-long-enough-for-django-checks")
        monkeypatch.setenv("ALLOWED_HOSTS", "127.0.0.1,localhost")
        monkeypatch.setenv("BPM_SSL_REDIRECT", "false")
    return processes


def log_in(page: Page, username: str, then: str) -> None:
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(then)


def more_like(saga: SagaInstance, count: int) -> list[SagaInstance]:
    """Stuck sagas failing as `saga` did (the pile an incident leaves), written as rows."""
    now = clock.now()
    return SagaInstance.objects.bulk_create(
        SagaInstance(
            definition=saga.definition,
            definition_name=saga.definition_name,
            status=SagaStatus.STUCK,
            stuck_reason=saga.stuck_reason,
            stuck_direction=saga.stuck_direction,
            stuck_step=saga.stuck_step,
            stuck_error_code=saga.stuck_error_code,
            stuck_error=saga.stuck_error,
            stuck_attempts=saga.stuck_attempts,
            business_key=f"pile-{index}",
            created_at=now,
            updated_at=now,
        )
        for index in range(count)
    )


def listed(page: Page) -> set[str]:
    rows = page.locator("table.saga-table tbody tr")
    return set(rows.evaluate_all("rows => rows.map(row => row.dataset.saga)"))


def test_the_cause_is_above_the_fold_and_its_group_leads_to_exactly_its_sagas(
    tmp_path: Path,
    page: Page,
    demo_sagas: dict[str, SagaInstance],  # noqa: F811
):
    bounced = demo_sagas["bouncing_email"]
    assert bounced.status == SagaStatus.STUCK and bounced.stuck_step == "send_confirmation"
    pile = more_like(bounced, 2)
    UserFactory(username="vera", groups=["viewers"])
    page.set_viewport_size(LAPTOP)
    log_in(page, "vera", then=f"{SAGAS}{bounced.id}/")

    step, error = page.locator("dd[data-cause=step]"), page.locator("dd[data-cause=error]")
    expect(step).to_contain_text("send_confirmation")
    expect(step).to_contain_text(f"attempt {bounced.stuck_attempts} of")
    expect(error).to_contain_text(bounced.stuck_error_code)
    expect(error).to_contain_text(bounced.stuck_error[:40])
    for cause in (step, error):
        box = cause.bounding_box()
        assert box is not None
        assert box["y"] >= 0 and box["y"] + box["height"] <= LAPTOP["height"], box
    page.screenshot(path=tmp_path / "saga-page-1366.png")

    page.goto(OVERVIEW)
    page.screenshot(path=tmp_path / "overview-1366.png", full_page=True)
    group = page.locator(".stuck-group", has_text="3 stuck on send_confirmation")
    expect(group).to_have_count(1)
    group.get_by_role("link", name=re.compile("^3 stuck on send_confirmation")).click()
    expect(page).to_have_url(re.compile(r"\?status=STUCK&definition=place_order&version=\d+"))
    assert "step=send_confirmation" in page.url and f"error={bounced.stuck_error_code}" in page.url
    expect(page.locator("table.saga-table tbody tr")).to_have_count(3)
    assert listed(page) == {str(saga.id) for saga in [bounced, *pile]}
    expect(page.locator("table.saga-table thead")).to_contain_text("Failing step")
    expect(page.locator("table.saga-table tbody td[data-cause=step]").first).to_have_text(
        "send_confirmation"
    )


def test_an_operator_finds_sagas_by_order_id_and_by_an_input_value(
    page: Page,
    demo_sagas: dict[str, SagaInstance],  # noqa: F811
):
    bounced = demo_sagas["bouncing_email"]
    order_id = str(bounced.context["create_order"]["order_id"])
    UserFactory(username="olga", groups=["operators"])
    log_in(page, "olga", then=SAGAS)
    box = page.get_by_role("searchbox", name="Search")
    expect(box).to_have_attribute("placeholder", re.compile("order id"))
    expect(page.locator(".saga-filter-q .help")).to_contain_text("key=value")

    # Typing searches as it goes (htmx), and the address keeps the search.
    box.fill(order_id)
    box.press("Enter")
    expect(page).to_have_url(re.compile(rf"q={order_id}"))
    expect(page.locator(f"tr[data-saga='{bounced.id}']")).to_have_count(1)
    assert listed(page) == {str(s.id) for s in SagaInstance.objects.filter(search(order_id))}

    box.fill("payment_method=card_down")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"q=payment_method%3Dcard_down"))
    wanted = {str(s.id) for s in SagaInstance.objects.filter(input__payment_method="card_down")}
    assert wanted
    expect(page.locator("table.saga-table tbody tr")).to_have_count(len(wanted))
    assert listed(page) == wanted

    # A malformed search says why instead of showing nothing.
    box.fill("=card_down")
    box.press("Enter")
    expect(page.locator(".saga-filter-errors")).to_contain_text("key before “=” is missing")

    # The admin's search finds the same sagas.
    page.goto("/admin/bpm/sagainstance/?q=payment_method%3Dcard_down")
    expect(page.locator("#result_list tbody tr")).to_have_count(len(wanted))
    expect(page.locator("#changelist-search")).to_contain_text("key=value")
