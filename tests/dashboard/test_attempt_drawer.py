"""One attempt in detail (the saga page's drawer): what each role gets, and what it shows."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from factories import UserFactory
from saga_page_kit import client_as, saga_url
from testkit import three_steps

from bpm import services
from bpm.models import SagaInstance

pytestmark = pytest.mark.django_db(transaction=True)
EVIL = "<script>alert('owned')</script>"


@pytest.fixture
def retried(the_world, drained) -> SagaInstance:
    """A saga whose step b failed once (a fault with a traceback), then succeeded."""
    the_world.will("b", "fault")
    saga = services.saga_start(definition=three_steps().name, input={"note": EVIL}, actor="test")
    drained()
    return saga


def attempt_url(saga: SagaInstance, number: int) -> str:
    return f"{saga_url(saga)}attempts/{number}/"


def test_an_attempt_shows_its_worker_error_traceback_input_and_context(retried):
    # Attempts in start order: a#1, b#1 (failed), b#2, c#1.
    html = client_as("vera", "viewers").get(attempt_url(retried, 2)).content.decode()
    assert "b → attempt 1" in html
    assert "failed, retried" in html
    assert re.search(r'class="attempt-worker">worker:', html)
    assert "ConnectionError: b is unreachable" in html
    assert "Traceback (most recent call last)" in html
    # Before b ran, the context held a's output; a failed attempt changes nothing.
    before = re.search(r'data-json="context-before">(.*?)</pre>', html, re.DOTALL).group(1)
    after = re.search(r'data-json="context-after">(.*?)</pre>', html, re.DOTALL).group(1)
    assert "&quot;a&quot;" in before and "&quot;b&quot;" not in before
    assert after == before


def test_a_successful_attempt_shows_its_output_added_to_the_context(retried):
    html = client_as("vera", "viewers").get(attempt_url(retried, 3)).content.decode()
    after = re.search(r'data-json="context-after">(.*?)</pre>', html, re.DOTALL).group(1)
    output = re.search(r'data-json="output">(.*?)</pre>', html, re.DOTALL).group(1)
    assert "&quot;b&quot;" in after
    assert "&quot;done&quot;: &quot;b&quot;" in output


def test_the_input_is_escaped(retried):
    html = client_as("vera", "viewers").get(attempt_url(retried, 1)).content.decode()
    assert EVIL not in html
    assert "&lt;script&gt;" in html


def test_htmx_gets_the_drawer_content_alone(retried):
    response = client_as("vera", "viewers").get(attempt_url(retried, 1), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'id="attempt-1"' in html
    assert "<html" not in html


def test_an_attempt_that_does_not_exist_is_404(retried):
    viewer = client_as("vera", "viewers")
    assert viewer.get(attempt_url(retried, 5)).status_code == 404
    assert viewer.get(attempt_url(retried, 0)).status_code == 404


def test_an_operator_sees_it_too(retried):
    assert client_as("olga", "operators").get(attempt_url(retried, 1)).status_code == 200


def test_an_anonymous_visitor_is_sent_to_log_in(retried):
    response = Client().get(attempt_url(retried, 1))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("staff", [True, False])
def test_a_client_user_sees_nothing_even_of_its_own_saga(the_world, drained, staff):
    owner = UserFactory(username="acme", groups=["clients"], is_staff=staff)
    saga = services.saga_start(
        definition=three_steps().name, input={"secret": "s3cr3t"}, user=owner, owner=owner
    )
    drained()
    for user in (owner, UserFactory(username="other", groups=["clients"], is_staff=staff)):
        client = Client()
        client.force_login(user)
        response = client.get(attempt_url(saga, 1))
        assert response.status_code in (302, 403)
        assert b"s3cr3t" not in response.content


def test_the_timeline_bars_and_diagram_steps_open_attempts_by_keyboard(retried):
    html = client_as("vera", "viewers").get(saga_url(retried)).content.decode()
    bars = re.findall(r'<rect class="timeline-bar[^>]*>', html)
    assert len(bars) == 4
    for number, bar in enumerate(bars, start=1):
        assert f'data-index="{number}"' in bar
        assert 'tabindex="0"' in bar and 'role="button"' in bar and "aria-label=" in bar
    assert re.search(r'<g class="diagram-step[^>]*data-step="b"[^>]*data-index="3"', html)
    assert 'id="attempt-drawer"' in html
    assert 'width="100%"' in html
