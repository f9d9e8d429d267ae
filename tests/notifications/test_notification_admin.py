"""The notifications admin: sent mail can be looked up, never edited."""

from __future__ import annotations

import pytest
from django.urls import reverse
from factories import NotificationFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["", "?q=ada", "?status__exact=SENT"])
def test_the_notification_list_renders_with_searches_and_filters(admin_client, query):
    NotificationFactory(recipient="ada@example.com")
    url = reverse("admin:notifications_notification_changelist") + query
    assert admin_client.get(url).status_code == 200


def test_a_notification_is_shown_read_only(admin_client):
    notification = NotificationFactory()
    url = reverse("admin:notifications_notification_change", args=[notification.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
