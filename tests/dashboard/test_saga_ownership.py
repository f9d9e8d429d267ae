"""Assigning, acknowledging and commenting on a saga: the services, the saga page, the list,
the timeline, the command, and the conflict message that names who acted."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from factories import UserFactory
from saga_page_kit import client_as, saga_url, stuck_after_pivot

from bpm import services
from bpm.errors import Conflict, InvalidInput, PermissionDenied
from bpm.models import EventType, SagaEvent, SagaInstance

pytestmark = pytest.mark.django_db(transaction=True)
EVIL = "<script>alert('owned')</script>"


@pytest.fixture
def stuck(the_world, drained) -> SagaInstance:
    return stuck_after_pivot(the_world, drained)


def own(saga: SagaInstance, change: str, client: Client, **data: str):
    return client.post(f"{saga_url(saga)}ownership/{change}/", data, HTTP_HX_REQUEST="true")


def test_an_operator_assigns_a_saga_to_themself_and_it_shows_in_the_list_as_mine(stuck):
    olga = client_as("olga", "operators")
    response = own(stuck, "assign", olga, assignee="me")
    assert response.status_code == 200
    assert 'Assigned to <strong class="saga-assignee">olga</strong>' in response.content.decode()
    mine = olga.get("/admin/dashboard/sagas/?assignee=mine").content.decode()
    assert str(stuck.id) in mine and "(me)" in mine
    other = client_as("otto", "operators").get("/admin/dashboard/sagas/?assignee=mine")
    assert str(stuck.id) not in other.content.decode()
    assert str(stuck.id) in olga.get("/admin/dashboard/sagas/?assignee=").content.decode()


def test_a_saga_goes_to_a_colleague_only_if_they_are_an_operator(stuck):
    UserFactory(username="otto", groups=["operators"])
    UserFactory(username="vera", groups=["viewers"])
    olga = client_as("olga", "operators")
    assert own(stuck, "assign", olga, assignee="otto").status_code == 200
    refused = own(stuck, "assign", olga, assignee="vera")
    assert refused.status_code == 400
    assert "not an operator" in refused.content.decode()
    assert own(stuck, "assign", olga, assignee="otto").status_code == 409


def test_acknowledging_is_once_per_stuck_episode(stuck):
    olga = client_as("olga", "operators")
    assert own(stuck, "acknowledge", olga).status_code == 200
    again = own(stuck, "acknowledge", olga)
    assert again.status_code == 409
    assert "already acknowledged" in again.content.decode()


def test_a_comment_is_escaped_limited_and_on_the_timeline(stuck):
    olga = client_as("olga", "operators")
    response = own(stuck, "comment", olga, text=f"mailbox full {EVIL}\nsecond line")
    html = response.content.decode()
    assert response.status_code == 200
    assert EVIL not in html
    assert "&lt;script&gt;" in html
    assert re.search(r'class="timeline-operator" data-type="COMMENTED" data-user="olga"', html)
    assert own(stuck, "comment", olga, text="x" * 2001).status_code == 400
    assert own(stuck, "comment", olga, text="   ").status_code == 400
    with pytest.raises(InvalidInput, match="control characters"):
        services.saga_comment(saga_id=stuck.id, text="bell\x07", actor="user:olga")
    assert SagaEvent.objects.filter(saga=stuck, type=EventType.COMMENTED).count() == 1


def test_a_comment_is_not_progress(stuck):
    before = SagaInstance.objects.get(pk=stuck.pk).updated_at
    services.saga_comment(saga_id=stuck.id, text="looking", actor="user:olga")
    assert SagaInstance.objects.get(pk=stuck.pk).updated_at == before


@pytest.mark.parametrize("change", ["assign", "acknowledge", "comment"])
def test_a_viewer_gets_403_and_no_form(stuck, change):
    vera = client_as("vera", "viewers")
    assert own(stuck, change, vera, assignee="me", text="hi").status_code == 403
    assert "saga-comment-form" not in vera.get(saga_url(stuck)).content.decode()


@pytest.mark.parametrize("change", ["assign", "acknowledge", "comment"])
def test_anonymous_and_client_users_change_nothing(stuck, change):
    for client in (
        Client(),
        client_as("shop", "clients"),
        client_as("rival", "clients"),
    ):
        response = own(stuck, change, client, assignee="me", text="hi")
        assert response.status_code in (200, 302, 403)
        assert b"saga-live" not in response.content
    saga = SagaInstance.objects.get(pk=stuck.pk)
    assert saga.assignee_id is None and saga.acknowledged_at is None
    assert not SagaEvent.objects.filter(saga=stuck, type=EventType.COMMENTED).exists()


def test_the_services_refuse_a_user_without_the_permission(stuck):
    with pytest.raises(PermissionDenied):
        services.saga_comment(saga_id=stuck.id, text="hi", user=UserFactory(groups=["viewers"]))


def test_the_conflict_of_a_colliding_operator_says_who_acted_and_what_they_did(stuck):
    services.saga_abort(saga_id=stuck.id, reason="refunded by hand", actor="user:ann")
    with pytest.raises(Conflict) as conflict:
        services.saga_retry(saga_id=stuck.id, reason="mail is back", actor="user:bob")
    message = str(conflict.value)
    assert "ann" in message and "operator abort" in message and "refunded by hand" in message


def test_the_command_assigns_acknowledges_and_comments(stuck):
    UserFactory(username="otto", groups=["operators"])
    out = StringIO()
    call_command("saga_assign", str(stuck.id), "--to", "otto", "--user", "olga", stdout=out)
    assert "assigned to otto" in out.getvalue()
    call_command("saga_assign", str(stuck.id), "--acknowledge", stdout=out)
    call_command("saga_assign", str(stuck.id), "--comment", "called the bank", stdout=out)
    saga = SagaInstance.objects.get(pk=stuck.pk)
    assert saga.assignee.username == "otto" and saga.acknowledged_at is not None
