from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_an_htmx_poll_after_the_session_ended_sends_the_browser_to_the_login_page(client):
    overview = reverse("dashboard:overview")
    response = client.get(
        overview, headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{overview}"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('admin:login')}?next=%2Fadmin%2Fdashboard%2F"
    assert b"<form" not in response.content


def test_a_plain_request_without_a_session_is_redirected_as_the_admin_does(client):
    response = client.get(reverse("dashboard:definitions"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
