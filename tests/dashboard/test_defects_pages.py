"""Issue 11's defects that a test client sees: previews name the status a saga ends in, a viewer
is told why there are no buttons, refusals and missing pages are styled pages that say why."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from factories import UserFactory
from saga_page_kit import action_url, client_as, saga_url, stalled_before_pivot, stuck_after_pivot
from testkit import fresh

from bpm.models import SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}
PRODUCT = "bpm — saga orchestrator"


@pytest.fixture
def stuck(the_world, drained):
    return stuck_after_pivot(the_world, drained)


@pytest.fixture
def operator() -> Client:
    return client_as("olga", "operators")


@pytest.fixture
def viewer() -> Client:
    return client_as("vera", "viewers")


def outcome(html: str) -> str:
    found = re.findall(r'class="[^"]*saga-outcome[^"]*" data-outcome="(\w+)"', html)
    assert len(found) == 1, html
    return found[0]


@pytest.mark.parametrize(
    ("action", "ends"),
    [("retry", "COMPLETED"), ("edit", "COMPLETED"), ("skip", "COMPLETED"), ("abort", "ABORTED")],
)
def test_every_preview_names_the_status_the_saga_ends_in(stuck, operator, action, ends):
    for headers in (HTMX, {}):
        html = operator.get(action_url(stuck, action), headers=headers).content.decode()
        assert outcome(html) == ends
        badge = f'<span class="status-badge status-{ends.lower()}">{ends}</span>'
        assert f"the saga ends {badge}" in html


def test_skip_and_abort_previews_no_longer_read_the_same(stuck, operator):
    skip = operator.get(action_url(stuck, "skip"), headers=HTMX).content.decode()
    abort = operator.get(action_url(stuck, "abort"), headers=HTMX).content.decode()
    assert "Nothing more runs: the saga ends" in skip and "resolved by hand" not in skip
    assert "Nothing more runs: the saga ends" in abort and "resolved by hand" in abort


def test_the_compensate_preview_says_the_saga_ends_compensated(settings, operator):
    saga = stalled_before_pivot(settings, finished=1)
    html = operator.get(action_url(saga, "compensate"), headers=HTMX).content.decode()
    assert outcome(html) == SagaStatus.COMPENSATED
    assert "If these succeed, the saga ends" in html


def test_a_viewer_is_told_why_there_are_no_buttons(stuck, viewer):
    html = viewer.get(saga_url(stuck)).content.decode()
    assert 'aria-label="Actions"' not in html
    hint = re.search(r'<p class="saga-view-only help">([^<]*)</p>', html)
    assert hint, "no hint for the viewer"
    assert hint.group(1).startswith(
        "You can view but not act: operators can retry, retry with edited input,"
    )
    assert "skip the failed step" in hint.group(1)
    assert "abort" in hint.group(1)
    assert hint.group(1).endswith(
        " this saga. Ask an administrator to add you to the operators group."
    )


def test_an_operator_gets_buttons_and_no_view_only_note(stuck, operator):
    html = operator.get(saga_url(stuck)).content.decode()
    assert 'aria-label="Actions"' in html and "You can view but not act" not in html


def test_nobody_is_told_about_actions_a_finished_saga_does_not_allow(stuck, operator, viewer):
    operator.post(action_url(stuck, "abort"), {"reason": "done by hand"})
    assert fresh(stuck).status == SagaStatus.ABORTED
    assert "You can view but not act" not in viewer.get(saga_url(stuck)).content.decode()


@pytest.mark.parametrize("debug", [True, False], ids=["debug-on", "debug-off"])
def test_a_typed_action_url_gives_a_styled_403_that_says_why(stuck, viewer, settings, debug):
    settings.DEBUG = debug
    for method in (viewer.get, viewer.post):
        response = method(action_url(stuck, "retry"))
        assert response.status_code == 403
        html = response.content.decode()
        assert "<h1>403 Forbidden</h1>" in html and PRODUCT in html
        assert "/static/admin/css/base.css" in html
        message = re.search(r"<p class=\"errornote\" data-error-message>([^<]+)</p>", html)
        assert message and "Vera may not retry sagas: that needs" in message.group(1)
        assert "You are logged in as <strong>vera</strong> (viewers)" in html


def test_an_htmx_refusal_is_a_fragment_for_the_panel(stuck, viewer):
    response = viewer.post(action_url(stuck, "retry"), {"reason": "x"}, headers=HTMX)
    assert response.status_code == 403
    html = response.content.decode()
    assert "<html" not in html and "vera may not retry sagas" in html


def test_a_user_without_the_view_permission_gets_the_styled_403(client):
    client.force_login(UserFactory(username="stan", is_staff=True))
    response = client.get("/admin/dashboard/")
    assert response.status_code == 403
    assert "You may not view sagas." in response.content.decode()


def test_a_missing_page_is_styled_with_debug_off(operator, settings):
    settings.DEBUG = False
    response = operator.get("/admin/dashboard/sagas/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>404 Not found</h1>" in html and PRODUCT in html and "data-error-message" in html


def test_the_server_error_page_renders_without_any_context():
    from django.template import loader

    html = loader.get_template("500.html").render()
    assert "<h1>500 Server error</h1>" in html and PRODUCT in html
