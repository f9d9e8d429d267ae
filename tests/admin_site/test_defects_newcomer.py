"""Issue 11's newcomer path: the admin names the product and leads to the dashboard, the login
page shows the development users with DEBUG on only, /favicon.ico is an icon, and the API's
documentation pages load nothing from another host."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from factories import UserFactory

from bpm.management.commands.runstack import DEV_USERNAME, DEV_USERS
from bpm.templatetags.bpm_site import DEVELOPMENT_LOGINS

pytestmark = pytest.mark.django_db

PRODUCT = "bpm — saga orchestrator"


@pytest.fixture
def admin_client_of_operator(client: Client) -> Client:
    client.force_login(UserFactory(username="olga", groups=["operators"]))
    return client


def test_the_admin_index_links_to_the_dashboard_and_names_the_product(admin_client_of_operator):
    html = admin_client_of_operator.get("/admin/").content.decode()
    assert 'class="module site-dashboard-link"' in html
    assert html.count('href="/admin/dashboard/"') >= 2  # the box and the user links
    assert PRODUCT in html and "Django administration" not in html
    assert "<title>Administration | bpm</title>" in html


@pytest.mark.parametrize(
    "path", ["/admin/login/", "/admin/dashboard/", "/admin/bpm/sagainstance/", "/admin/"]
)
def test_no_page_says_django_administration(admin_client_of_operator, path):
    client = Client() if path == "/admin/login/" else admin_client_of_operator
    html = client.get(path).content.decode()
    assert "Django administration" not in html and "Django site admin" not in html
    assert PRODUCT in html
    assert '<link rel="icon" href="/static/bpm/favicon.svg" type="image/svg+xml">' in html


def test_the_login_page_lists_the_development_users_that_exist_with_debug_on(client, settings):
    settings.DEBUG = True
    UserFactory(username="operator", groups=["operators"])
    UserFactory(username="viewer", groups=["viewers"])
    html = client.get("/admin/login/").content.decode()
    hint = re.search(r'<aside class="development-logins".*?</aside>', html, re.S)
    assert hint, html
    assert re.findall(r"<code>(\w+)</code>", hint.group(0)) == ["operator", "viewer"]


def test_the_login_page_shows_no_user_with_debug_off(client, settings):
    settings.DEBUG = False
    UserFactory(username="operator", groups=["operators"])
    assert "development-logins" not in client.get("/admin/login/").content.decode()


def test_the_login_page_shows_no_hint_when_no_development_user_exists(client, settings):
    settings.DEBUG = True
    UserFactory(username="olga", groups=["operators"])
    assert "development-logins" not in client.get("/admin/login/").content.decode()


def test_the_hint_names_the_users_runstack_creates():
    assert set(DEVELOPMENT_LOGINS) == {DEV_USERNAME, *(name for name, _, _ in DEV_USERS)}


def test_favicon_ico_leads_to_a_real_icon_among_the_static_files(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/bpm/favicon.ico"
    path = finders.find("bpm/favicon.ico")
    assert isinstance(path, str)
    assert Path(path).read_bytes()[:4] == b"\x00\x00\x01\x00"  # an ICO header


class ExternalReferences(HTMLParser):
    """Collect every address a page would load: src, href of <link>, srcset, style url()."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if not value:
                continue
            loads = name in ("src", "srcset", "data", "poster", "action") or (
                name == "href" and tag == "link"
            )
            if loads:
                self.found.append(value)
            self.found.extend(re.findall(r"url\(['\"]?([^'\")]+)", value))

    def handle_data(self, data: str) -> None:
        self.found.extend(re.findall(r"url\(['\"]?([^'\")]+)", data))
        self.found.extend(re.findall(r"@import\s+['\"]([^'\"]+)", data))


def external(html: str) -> list[str]:
    parser = ExternalReferences()
    parser.feed(html)
    return [url for url in parser.found if re.match(r"^(https?:)?//", url)]


@pytest.mark.parametrize("path", ["/api/redoc/", "/api/docs/", "/admin/login/"])
def test_documentation_pages_load_nothing_from_another_host(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert external(response.content.decode()) == []
    policy = response["Content-Security-Policy"]
    assert "http" not in policy and "*" not in policy, policy


def test_redocs_bundle_is_served_without_its_cdn_logo(client):
    html = client.get("/api/redoc/").content.decode()
    script = re.search(r'<script src="([^"]+)"></script>', html)
    assert script and script.group(1) == "/api/redoc/redoc.standalone.js"
    response = client.get(script.group(1))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"Redoc" in body and b"cdn.redoc.ly" not in body
    # No <img>, stylesheet or font address of another host is left in the bundle.
    assert not re.findall(rb'src:"https?://', body)
    again = client.get(script.group(1), headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304
