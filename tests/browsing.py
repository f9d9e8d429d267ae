"""What browser tests share beyond tests/e2e/conftest.py's fixtures: marks and page scripts.

    from browsing import DEBUG_ON_AND_OFF, LAPTOP, log_in

    @DEBUG_ON_AND_OFF          # the web server once with DEBUG on, once with it off
    @LAPTOP                    # a 1366x768 window
    def test_it_fits(page): ...

Both parametrize fixtures of tests/e2e/conftest.py (`web_debug`, `viewport`) indirectly.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

PASSWORD = "secret-password"

DEBUG_ON_AND_OFF = pytest.mark.parametrize(
    "web_debug", ["true", "false"], ids=["debug-on", "debug-off"], indirect=True
)
LAPTOP = pytest.mark.parametrize("viewport", [(1366, 768)], ids=["1366x768"], indirect=True)
LIGHT_AND_DARK = pytest.mark.parametrize("color_scheme", ["light", "dark"])


def log_in(page: Page, username: str, then: str, password: str = PASSWORD) -> None:
    """Open `then` logged out, which leads to the admin's login form, and log in there."""
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(then)


def overflow(page: Page) -> int:
    """Return how many pixels the page is wider than the window (0: no horizontal scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


# WCAG's contrast ratio between an element's text colour and the first opaque background behind
# it (1 to 21; 4.5 is the minimum for normal text).
CONTRAST = """element => {
    const rgb = value => value.match(/[\\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
        const channel = c => {
            c /= 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    let node = element, background = null;
    while (node && node.nodeType === 1) {
        const colour = rgb(getComputedStyle(node).backgroundColor);
        if (colour.length < 4 || colour[3] > 0.5) { background = colour; break; }
        node = node.parentElement;
    }
    background = background || [255, 255, 255];
    const [a, b] = [luminance(rgb(getComputedStyle(element).color)), luminance(background)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""
