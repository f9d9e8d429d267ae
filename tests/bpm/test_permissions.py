from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from factories import UserFactory
from testkit import fresh, with_pivot

from bpm import services
from bpm.errors import PermissionDenied
from bpm.models import EventType, SagaInstance, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stuck_saga(the_world, drained):
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    saga = services.saga_start(definition="with_pivot", input={}, actor="test")
    drained()
    assert fresh(saga).status == SagaStatus.STUCK
    return saga


def perms(group: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=group).permissions.select_related("content_type")
    }


def test_the_migration_creates_the_three_groups():
    viewers, operators, clients = perms("viewers"), perms("operators"), perms("clients")
    assert {"bpm.view_sagainstance", "orders.view_order", "payments.view_payment"} <= viewers
    assert not any(p.endswith("_saga") for p in viewers)
    assert viewers < operators
    assert {"bpm.retry_saga", "bpm.skip_saga", "bpm.compensate_saga", "bpm.abort_saga"} <= (
        operators
    )
    assert {"bpm.start_saga", "orders.add_order", "payments.add_customer"} <= clients
    assert "bpm.retry_saga" not in clients


@pytest.mark.parametrize("action", ["retry", "skip", "compensate", "abort"])
def test_a_viewer_may_not_act_and_nothing_changes(stuck_saga, action):
    viewer = UserFactory(username="vera", groups=["viewers"])
    events = stuck_saga.events.count()
    act = getattr(services, f"saga_{action}")
    with pytest.raises(PermissionDenied, match=f"vera may not {action} sagas.*bpm.{action}_saga"):
        act(saga_id=stuck_saga.id, reason="try", user=viewer)
    assert fresh(stuck_saga).status == SagaStatus.STUCK
    assert stuck_saga.events.count() == events


def test_an_operator_acts_and_the_timeline_names_them(stuck_saga, drained):
    operator = UserFactory(username="olga", groups=["operators"])
    services.saga_retry(saga_id=stuck_saga.id, reason="mail is back", user=operator)
    drained()
    assert fresh(stuck_saga).status == SagaStatus.COMPLETED
    audit = stuck_saga.events.get(type=EventType.OPERATOR_RETRY)
    assert (audit.actor, audit.message) == ("user:olga", "mail is back")


def test_a_client_may_start_a_saga_but_not_act_on_one(stuck_saga, the_world):
    client = UserFactory(username="shop", groups=["clients"])
    started = services.saga_start(definition="with_pivot", input={}, user=client)
    assert started.events.first().actor == "user:shop"
    with pytest.raises(PermissionDenied):
        services.saga_abort(saga_id=stuck_saga.id, reason="no", user=client)


def test_a_user_without_the_start_permission_starts_nothing(the_world):
    with_pivot()
    viewer = UserFactory(groups=["viewers"])
    with pytest.raises(PermissionDenied, match="may not start sagas"):
        services.saga_start(definition="with_pivot", input={}, user=viewer)
    assert not SagaInstance.objects.exists()


def test_an_inactive_operator_may_not_act(stuck_saga):
    operator = UserFactory(groups=["operators"], is_active=False)
    with pytest.raises(PermissionDenied):
        services.saga_abort(saga_id=stuck_saga.id, reason="gone", user=operator)
