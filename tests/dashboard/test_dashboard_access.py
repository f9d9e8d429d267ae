from __future__ import annotations

import pytest
from django.urls import reverse
from factories import UserFactory
from testkit import three_steps

from bpm import services

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["overview", "sagas", "definitions", "definition", "saga"])
def page(request):
    """Every dashboard page's URL: one of each kind."""
    definition = three_steps()
    if request.param == "definition":
        return reverse("dashboard:definition", args=[definition.name])
    if request.param == "saga":
        saga = services.saga_start(definition=definition.name, input={}, actor="test")
        return reverse("dashboard:saga", args=[saga.id])
    return reverse(f"dashboard:{request.param}")


def test_a_viewer_sees_every_page(viewer, page):
    assert viewer.get(page).status_code == 200


def test_an_anonymous_visitor_is_sent_to_the_admin_login(client, page):
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('admin:login')}?next=")


def test_staff_without_the_view_permission_are_refused(client, page):
    client.force_login(UserFactory())
    assert client.get(page).status_code == 403


def test_an_htmx_poll_after_the_session_ended_sends_the_browser_to_the_login_page(client):
    overview = reverse("dashboard:overview")
    response = client.get(
        overview, headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{overview}"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('admin:login')}?next=%2Fadmin%2Fdashboard%2F"
    assert b"<form" not in response.content
