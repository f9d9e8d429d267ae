"""Issue 13, item 4 in a real browser: the admin's composer draws the steps as they are edited,
and says what is wrong instead while they cannot run (runserver with DEBUG on and off)."""

from __future__ import annotations

import pytest
from browsing import DEBUG_ON_AND_OFF, log_in
from factories import UserFactory
from playwright.sync_api import Page, expect

from bpm import definitions
from orders.sagas import place_order

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    DEBUG_ON_AND_OFF,
]


def edge(page: Page, before: str, after: str):
    return page.locator(
        f"#composer-diagram line.diagram-forward[data-from='{before}'][data-to='{after}']"
    )


def test_typing_an_after_redraws_the_edges(page: Page):
    v1, _ = definitions.sync_declaration(place_order())
    UserFactory(username="dora", groups=["designers"])
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))

    log_in(page, "dora", f"/admin/bpm/sagadefinition/{v1.pk}/change/")
    page.get_by_role("link", name="Duplicate as new version").click()
    # The copy is drawn as v1 runs: one step after the other.
    expect(edge(page, "create_order", "take_payment")).to_have_count(1)
    expect(edge(page, "take_payment", "approve_order")).to_have_count(1)

    def after_of(step: str):
        row = page.locator("#steps-group tr.form-row").filter(
            has=page.locator(f"input[value='{step}']")
        )
        return row.locator("input[name$='-after']")

    # Payment starts with the saga: the pivot no longer waits for the order, which is refused.
    after_of("take_payment").fill("-")
    expect(page.locator("#composer-diagram .composer-problems")).to_contain_text(
        "must run after every compensatable step"
    )
    expect(page.locator("#composer-diagram svg")).to_have_count(0)

    # The pivot waits for both: drawn again, the two in parallel.
    after_of("approve_order").fill("create_order, take_payment")
    expect(edge(page, "create_order", "approve_order")).to_have_count(1)
    expect(edge(page, "take_payment", "approve_order")).to_have_count(1)
    expect(edge(page, "create_order", "take_payment")).to_have_count(0)

    # A name that is no step's is said, not drawn.
    after_of("send_confirmation").fill("ship")
    expect(page.locator("#composer-diagram .composer-problems")).to_contain_text(
        "runs after 'ship', which is not a step of this saga"
    )
    assert errors == []
