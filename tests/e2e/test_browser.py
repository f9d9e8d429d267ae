"""The operators' dashboard in a real browser, against runserver and real workers."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "secret-password"


def log_in(page: Page, username: str) -> None:
    """Log in through the admin's login form."""
    page.goto("/admin/")
    expect(page).to_have_url("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_an_operator_logs_in_through_the_admin_form(page: Page):
    UserFactory(username="olga", groups=["operators"])
    log_in(page, "olga")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page.get_by_text("Welcome, olga.")).to_be_visible()
