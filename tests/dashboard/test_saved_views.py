"""Saved views of the saga list per role: own and shared, live counts, hostile filters."""

from __future__ import annotations

import pytest
from django.urls import reverse
from factories import UserFactory
from saga_rows import make_sagas
from testkit import three_steps

from bpm.dashboard import saved_views
from bpm.models import SagaStatus, SavedView

pytestmark = pytest.mark.django_db

VIEWS = reverse("dashboard:saved_views")


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(username="olga", groups=["operators"]))
    return client


@pytest.fixture
def definition():
    return three_steps()


def save(client, name: str, query: str, shared: bool = False):
    data = {"name": name, "query": query}
    if shared:
        data["shared"] = "on"
    return client.post(VIEWS, data)


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    assert client.get(VIEWS).status_code == 302
    assert save(client, "x", "status=STUCK").status_code == 302
    assert not SavedView.objects.exists()


def test_a_client_has_no_saved_views(client):
    owner = UserFactory(username="sam", groups=["operators"])
    view = SavedView.objects.create(owner=owner, name="shared", query="", shared=True)
    client.force_login(UserFactory(groups=["clients"]))
    assert client.get(VIEWS).status_code == 403
    assert save(client, "x", "status=STUCK").status_code == 403
    assert client.post(reverse("dashboard:saved_view_delete", args=[view.pk])).status_code == 403
    assert list(SavedView.objects.all()) == [view]


def test_an_anonymous_visitor_cannot_delete_a_view(client):
    owner = UserFactory(username="sam", groups=["operators"])
    view = SavedView.objects.create(owner=owner, name="shared", query="", shared=True)
    assert client.post(reverse("dashboard:saved_view_delete", args=[view.pk])).status_code == 302
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_a_viewer_saves_a_view_of_their_own_and_sees_its_live_count(viewer, definition):
    make_sagas(definition, 3, status=SagaStatus.STUCK)
    response = save(viewer, "stuck", "status=STUCK&cursor=abc&sort=updated")
    assert response.status_code == 302
    view = SavedView.objects.get()
    assert view.query == "status=STUCK&sort=updated"
    assert response["Location"] == f"{reverse('dashboard:sagas')}?status=STUCK&sort=updated"
    overview = viewer.get(reverse("dashboard:overview"))
    [counted] = overview.context["saved_views"]
    assert (counted.view.name, counted.count) == ("stuck", 3)
    make_sagas(definition, 2, status=SagaStatus.STUCK)
    [counted] = viewer.get(reverse("dashboard:sagas")).context["saved_views"]
    assert counted.count == 5


def test_a_viewer_may_not_share_a_view(viewer):
    response = save(viewer, "everyone's", "status=STUCK", shared=True)
    assert response.status_code == 403
    assert "vera may not share views" in response.content.decode()
    assert not SavedView.objects.exists()


def test_an_operator_shares_a_view_that_everyone_sees_and_only_they_delete(operator, client):
    assert save(operator, "stuck for everyone", "status=STUCK", shared=True).status_code == 302
    view = SavedView.objects.get()
    other = UserFactory(username="oscar", groups=["operators"])
    client.force_login(other)
    assert [c.view.name for c in client.get(VIEWS).context["saved_views"]] == ["stuck for everyone"]
    refused = client.post(reverse("dashboard:saved_view_delete", args=[view.pk]))
    assert refused.status_code == 403
    assert SavedView.objects.exists()
    # Same name, another owner: allowed.
    assert save(client, "stuck for everyone", "status=STUCK").status_code == 302
    client.force_login(view.owner)
    assert client.post(reverse("dashboard:saved_view_delete", args=[view.pk])).status_code == 302
    assert list(SavedView.objects.values_list("owner__username", flat=True)) == ["oscar"]


def test_a_private_view_is_unseen_by_others_and_its_delete_is_a_404(viewer, client):
    owner = UserFactory(username="pia", groups=["viewers"])
    view = SavedView.objects.create(owner=owner, name="mine", query="status=STUCK")
    assert viewer.get(VIEWS).context["saved_views"] == []
    response = viewer.post(reverse("dashboard:saved_view_delete", args=[view.pk]))
    assert response.status_code == 404
    assert SavedView.objects.exists()


def test_names_are_unique_per_owner(viewer):
    save(viewer, "stuck", "status=STUCK")
    response = save(viewer, "stuck", "status=RUNNING")
    assert response.status_code == 400
    assert "You already have a view named “stuck”." in response.content.decode()


@pytest.mark.parametrize(
    ("name", "query", "says"),
    [
        ("", "status=STUCK", "Name the view."),
        ("x" * 101, "status=STUCK", "at most 100 characters"),
        ("bad", "status=BORED", "Select a valid choice"),
        ("bad", "version=2", "Choose a definition to filter by its version."),
        ("bad", "created_from=yesterday", "Enter a valid date/time."),
        ("bad", "q=" + "x" * 2100, "longer than 2000 characters"),
        ("bad", "size=5000", "Select a valid choice"),
    ],
)
def test_a_filter_that_does_not_validate_is_not_saved_and_says_why(viewer, name, query, says):
    response = save(viewer, name, query)
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not SavedView.objects.exists()


def test_a_saved_view_that_no_longer_validates_shows_its_error_not_a_crash(viewer, definition):
    user = viewer.get(VIEWS).wsgi_request.user
    SavedView.objects.create(
        owner=user, name="old version", query=f"definition={definition.name}&version=9"
    )
    SavedView.objects.create(owner=user, name="gibberish", query="status=%ff%00&sort=';drop")
    for page in (VIEWS, reverse("dashboard:overview"), reverse("dashboard:sagas")):
        response = viewer.get(page)
        assert response.status_code == 200
        body = response.content.decode()
        assert f"{definition.name} has no version 9." in body or page == reverse("dashboard:sagas")
        counted = {c.view.name: c for c in response.context["saved_views"]}
        assert counted["old version"].count is None
        assert "has no version 9" in counted["old version"].error
        assert counted["gibberish"].error


def test_counts_stop_at_the_limit(viewer, definition, monkeypatch):
    monkeypatch.setattr(saved_views, "COUNT_LIMIT", 4)
    make_sagas(definition, 6, status=SagaStatus.STUCK)
    save(viewer, "stuck", "status=STUCK")
    [counted] = viewer.get(VIEWS).context["saved_views"]
    assert (counted.count, counted.capped, counted.shown) == (4, True, "4+")


def test_the_saga_list_offers_to_save_its_current_filter(viewer, definition):
    body = viewer.get(reverse("dashboard:sagas") + "?status=STUCK&cursor=zz").content.decode()
    assert 'name="query" value="status=STUCK' in body
    assert "cursor" not in body.split('name="query" value="')[1].split('"')[0]
