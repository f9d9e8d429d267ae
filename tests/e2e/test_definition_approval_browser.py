"""Issue 9, item 4 in a real browser: one designer composes place_order without take_payment,
another approves it, through the admin served by runserver with DEBUG on and off."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from browsing import DEBUG_ON_AND_OFF
from factories import UserFactory
from playwright.sync_api import Browser, Page, expect

from bpm import definitions
from bpm.models import DefinitionEvent, SagaDefinition
from orders.sagas import place_order

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    DEBUG_ON_AND_OFF,
]
PASSWORD = "secret-password"


@pytest.fixture
def second_page(browser: Browser, live_url: str) -> Iterator[Page]:
    """Return a page in a browser context of its own: the second designer's session."""
    context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def log_in(page: Page, username: str, then: str) -> None:
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(then)


def version_page(definition: SagaDefinition) -> str:
    return f"/admin/bpm/sagadefinition/{definition.pk}/change/"


def test_one_designer_composes_and_another_approves_in_the_admin(page: Page, second_page: Page):
    v1, _ = definitions.sync_declaration(place_order())
    UserFactory(username="dora", groups=["designers"])
    UserFactory(username="dave", groups=["designers"])

    # Dora duplicates v1, leaves take_payment out and says why.
    log_in(page, "dora", version_page(v1))
    page.get_by_role("link", name="Duplicate as new version").click()
    payment_row = page.locator("#steps-group tr.form-row").filter(
        has=page.locator("input[value='take_payment']")
    )
    payment_row.get_by_role("checkbox").check()
    page.get_by_label("Why this change").fill("the shop takes payment itself now")
    page.get_by_role("button", name="Save", exact=True).click()

    draft = SagaDefinition.objects.get(name="place_order", version=2)
    expect(page).to_have_url(version_page(draft))
    expect(page.locator(".messagelist")).to_contain_text("is a draft")
    expect(page.locator("tr[data-change='removed'][data-step='take_payment']")).to_be_visible()
    expect(page.get_by_role("link", name="Approve and publish")).to_have_count(0)
    expect(page.locator(".definition-draft-note")).to_contain_text("may not approve it")
    assert definitions.resolve("place_order") == v1

    # Dave, in his own session, reads the changes and approves.
    log_in(second_page, "dave", version_page(draft))
    second_page.get_by_role("link", name="Approve and publish").click()
    expect(
        second_page.locator("tr[data-change='removed'][data-step='take_payment']")
    ).to_be_visible()
    second_page.get_by_label("Comment").fill("agreed with finance")
    second_page.get_by_role("button", name="Approve and publish place_order v2").click()
    expect(second_page).to_have_url(version_page(draft))
    expect(second_page.locator(".messagelist")).to_contain_text("approved and published")

    draft.refresh_from_db()
    assert (draft.status, draft.composed_by.username, draft.reviewed_by.username) == (
        "PUBLISHED",
        "dora",
        "dave",
    )
    assert definitions.resolve("place_order") == draft
    assert [(e.type, e.actor) for e in DefinitionEvent.objects.filter(definition=draft)] == [
        ("COMPOSED", "user:dora"),
        ("APPROVED", "user:dave"),
    ]
