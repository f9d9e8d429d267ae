"""Take the README's and docs/dashboard.md's screenshots again, in Chromium at 1366x768, light
and dark, from a running site with the demo's sagas (`make run`, after a minute or two).

    make run                       # in one terminal; wait for "Ready."
    make screenshots               # in another: this script with its defaults

or `.venv/bin/python docs/screenshots/take.py --base-url http://127.0.0.1:8001 --user admin
--password admin --out docs/screenshots`. It logs in, waits (up to --wait seconds) until the
overview lists a stuck saga, then saves <name>.png and <name>-dark.png for every page in PAGES.
Debian's chromium (/usr/bin/chromium, or $BPM_CHROMIUM) is driven through Playwright; nothing
is downloaded.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

HERE = Path(__file__).resolve().parent
CHROMIUM = os.getenv("BPM_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1366, "height": 768}
OVERVIEW = "/admin/dashboard/"


@dataclass(frozen=True)
class Shot:
    """A screenshot: its file name, and how to reach the page from a logged-in overview."""

    name: str
    open: Callable[[Page], None]
    full_page: bool = False


def go(path: str) -> Callable[[Page], None]:
    return lambda page: page.goto(path) and None


def stuck_saga(page: Page, scenario: str) -> str:
    """Return the path of a stuck saga the overview lists, of the demo scenario if it has one."""
    page.goto(OVERVIEW)
    rows = page.locator("tr[data-stuck-saga]")
    wanted = rows.filter(has_text=scenario)
    if not rows.count():
        raise SystemExit("the overview lists no stuck saga: is the demo running (make run)?")
    row = wanted.first if wanted.count() else rows.first
    return str(row.locator("a").first.get_attribute("href"))


def saga_page(scenario: str) -> Callable[[Page], None]:
    return lambda page: page.goto(stuck_saga(page, scenario)) and None


def action_confirmation(scenario: str, action: str) -> Callable[[Page], None]:
    """Open a stuck saga's page and the confirmation of one of its actions."""

    def open_it(page: Page) -> None:
        page.goto(stuck_saga(page, scenario))
        actions = page.get_by_role("group", name="Actions")
        button = actions.get_by_role("link", name=action, exact=True)
        if not button.count():
            print(f"  ({action} is not offered on {page.url}; the page is shown without it)")
            return
        button.click()
        page.locator("#saga-action-panel .saga-confirmation").wait_for()
        page.locator("#saga-action-panel").scroll_into_view_if_needed()

    return open_it


def attempt_drawer(scenario: str) -> Callable[[Page], None]:
    """Open a stuck saga's first attempt in the drawer, through its deep link."""

    def open_it(page: Page) -> None:
        page.goto(stuck_saga(page, scenario) + "#attempt-1")
        page.locator("#attempt-drawer").wait_for()

    return open_it


# The README shows overview, saga and definitions-dark; docs/dashboard.md the others.
PAGES = (
    Shot("overview", go(OVERVIEW)),
    Shot("sagas", go("/admin/dashboard/sagas/?status=STUCK")),
    Shot("saga", saga_page("bouncing_email"), full_page=True),
    Shot("saga-compensate", action_confirmation("payment_past_deadline", "Compensate")),
    Shot("definitions", go("/admin/dashboard/definitions/")),
    Shot("admin-sagas", go("/admin/bpm/sagainstance/")),
    Shot("compose", go("/admin/bpm/sagadefinition/add/")),
    Shot("saga-attempt", attempt_drawer("bouncing_email")),
    Shot("tasks", go("/admin/dashboard/tasks/")),
    Shot("alerts", go("/admin/dashboard/alerts/")),
    Shot("batches", go("/admin/dashboard/batches/")),
)


def log_in(page: Page, user: str, password: str) -> None:
    page.goto("/admin/login/?next=" + OVERVIEW)
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(OVERVIEW) + "$"))


def wait_for_stuck(page: Page, seconds: float) -> None:
    """Wait until the overview lists a stuck saga of each kind the demo makes (or time is up)."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(OVERVIEW)
        listed = page.locator("section.overview-stuck").inner_text()
        if "bouncing_email" in listed and "payment_past_deadline" in listed:
            return
        if time.monotonic() > deadline:
            print("  (the overview does not list both kinds of stuck demo saga yet; going on)")
            return
        time.sleep(3)


def take(browser: Browser, args: argparse.Namespace) -> list[Path]:
    saved = []
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        context = browser.new_context(
            base_url=args.base_url, viewport=VIEWPORT, color_scheme=scheme
        )
        page = context.new_page()
        log_in(page, args.user, args.password)
        if not saved:
            wait_for_stuck(page, args.wait)
        for shot in PAGES:
            shot.open(page)
            page.wait_for_load_state("networkidle")
            path = args.out / f"{shot.name}{suffix}.png"
            page.screenshot(path=path, full_page=shot.full_page)
            saved.append(path)
            print(f"  {path}")
        context.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.getenv("BPM_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--user", default="admin", help="a user who may view and compose")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNG files go")
    parser.add_argument(
        "--wait", type=float, default=120, help="seconds to wait for the demo's stuck sagas"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"Screenshots of {args.base_url} at 1366x768, light and dark, into {args.out}:")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            saved = take(browser, args)
        finally:
            browser.close()
    print(f"Saved {len(saved)} screenshots.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
