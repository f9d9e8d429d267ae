"""The orders admin: operators can find orders but never change what the saga owns."""

from __future__ import annotations

import pytest
from django.urls import reverse
from factories import OrderFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["", "?q=7", "?q=not-a-number", "?state__exact=PENDING"])
def test_the_order_list_renders_with_searches_and_filters(admin_client, query):
    OrderFactory(customer_id=7)
    response = admin_client.get(reverse("admin:orders_order_changelist") + query)
    assert response.status_code == 200


def test_an_order_can_be_found_by_its_saga(admin_client):
    order = OrderFactory()
    OrderFactory()
    response = admin_client.get(reverse("admin:orders_order_changelist"), {"q": order.saga_id})
    assert list(response.context["cl"].result_list) == [order]


def test_an_order_is_shown_read_only(admin_client):
    order = OrderFactory()
    url = reverse("admin:orders_order_change", args=[order.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    assert admin_client.get(reverse("admin:orders_order_add")).status_code == 403
