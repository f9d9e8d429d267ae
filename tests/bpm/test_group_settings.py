"""The groups see the apps the site names, and clients create what the site allows."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from bpm.permissions import CLIENTS, VIEWERS, client_permissions, group_apps, sync_groups


def names(group: str, app_label: str) -> set[str]:
    permissions = Group.objects.get(name=group).permissions
    return set(
        permissions.filter(content_type__app_label=app_label).values_list("codename", flat=True)
    )


@pytest.mark.django_db
def test_the_sites_apps_are_seen_by_viewers_and_clients_create_orders_and_customers():
    assert names(VIEWERS, "orders") == {"view_order"}
    assert names(CLIENTS, "orders") == {"add_order"}
    assert names(CLIENTS, "payments") == {"add_customer"}


@pytest.mark.django_db
def test_a_site_that_names_no_app_gives_its_groups_nothing_of_it(settings):
    for name in (VIEWERS, CLIENTS):
        Group.objects.get(name=name).permissions.remove(
            *Group.objects.get(name=name).permissions.filter(content_type__app_label="orders")
        )
    del settings.BPM_GROUP_APPS
    del settings.BPM_CLIENT_PERMISSIONS
    sync_groups("orders")
    assert names(VIEWERS, "orders") == set()
    assert names(CLIENTS, "orders") == set()
    assert group_apps() == ("bpm",)
    assert client_permissions() == [("bpm", "start_saga"), ("bpm", "view_sagadefinition")]


@pytest.mark.parametrize("setting", ["orders", [""], [3]])
def test_malformed_group_apps_are_refused_saying_what_they_must_be(settings, setting):
    settings.BPM_GROUP_APPS = setting
    with pytest.raises(ImproperlyConfigured, match="BPM_GROUP_APPS must be a list of app labels"):
        group_apps()


@pytest.mark.parametrize("setting", ["orders.add_order", ["add_order"], ["a.b.c"], [None]])
def test_malformed_client_permissions_are_refused_saying_what_they_must_be(settings, setting):
    settings.BPM_CLIENT_PERMISSIONS = setting
    with pytest.raises(ImproperlyConfigured, match=r'a list of "app_label\.codename"'):
        client_permissions()
