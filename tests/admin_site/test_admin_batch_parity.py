"""Admin parity: skip and retry with edited input on selected sagas, and "select all N" as a
batch repair of the changelist's filter."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from batch_kit import mailing
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from testkit import fresh

from benchmarks.stuck_sagas import seed_stuck
from bpm import batches
from bpm.models import EventType, SagaInstance, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)
LIST = reverse("admin:bpm_sagainstance_changelist")


@pytest.fixture
def stuck(the_world):
    return [SagaInstance.objects.get(pk=pk) for pk in seed_stuck(mailing(), 3, {"email": "a@x.io"})]


def _local(moment: str) -> str:
    return timezone.localtime(datetime.fromisoformat(moment)).strftime("%Y-%m-%dT%H:%M")


def post(client, action, sagas, url=LIST, **extra):
    data = {"action": action, "index": "0", "_selected_action": [s.pk for s in sagas], **extra}
    return client.post(url, data)


def test_skip_asks_for_the_output_and_records_it_on_each_saga(operator, stuck):
    page = post(operator, "skip", stuck[:2])
    assert page.status_code == 200 and b'name="output"' in page.content
    post(operator, "skip", stuck[:2], post="yes", output='{"by": "hand"}', reason="sent by hand")
    for saga in stuck[:2]:
        saga = fresh(saga)
        assert saga.context["send"] == {"by": "hand"} and saga.status == SagaStatus.RUNNING
        assert saga.events.get(type=EventType.OPERATOR_SKIP).message == "sent by hand"
    assert fresh(stuck[2]).status == SagaStatus.STUCK


def test_retry_with_edited_input_patches_each_selected_saga_and_checks_its_schema(operator, stuck):
    post(operator, "edit", stuck[:2], post="yes", input_patch='{"tier": "gold"}', reason="gold")
    assert fresh(stuck[0]).input == {"email": "a@x.io", "tier": "gold"}
    response = post(
        operator,
        "edit",
        stuck[2:] + stuck[:1],
        post="yes",
        input_patch='{"email": null}',
        reason="x",
    )
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("email" in message and "required" in message for message in said), said
    assert fresh(stuck[2]).status == SagaStatus.STUCK


def test_retry_with_edited_input_of_one_saga_opens_the_dashboards_editor(operator, stuck):
    response = post(operator, "edit", stuck[:1])
    assert response["Location"] == f"/admin/dashboard/sagas/{stuck[0].pk}/edit/"


def test_select_all_matching_makes_the_action_a_batch_of_the_changelists_filter(operator, stuck):
    url = (
        f"{LIST}?status__exact=STUCK&definition_name=mailing&o=2"
        "&created_at__gte=2020-01-01+00:00:00%2B00:00&created_at__lt=2030-01-01+00:00:00%2B00:00"
    )
    response = post(operator, "retry", stuck[:1], url=url, select_across="1")
    location = urlsplit(response["Location"])
    assert location.path == "/admin/dashboard/batches/new/"
    assert parse_qs(location.query) == {
        "status": ["STUCK"],
        "definition": ["mailing"],
        "created_from": [_local("2020-01-01T00:00+00:00")],
        "created_to": [_local("2030-01-01T00:00+00:00")],
        "action": ["retry"],
    }
    confirmation = operator.get(response["Location"])
    assert confirmation.status_code == 200 and b"status=STUCK" in confirmation.content
    edit = post(operator, "edit", stuck[:1], url=url, select_across="1")
    assert "action=retry" in edit["Location"]
    assert SagaInstance.objects.filter(status=SagaStatus.STUCK).count() == 3


def test_a_filter_the_dashboard_cannot_replay_is_refused_not_dropped(operator, stuck):
    response = post(operator, "abort", stuck[:1], url=f"{LIST}?id__gt=0", select_across="1")
    assert response.status_code == 302 and urlsplit(response["Location"]).path == LIST
    assert SagaInstance.objects.filter(status=SagaStatus.STUCK).count() == 3


def test_batches_are_listed_read_only_in_the_admin_with_a_link_to_their_progress(operator, stuck):
    batch = batches.batch_create(query={"status": "STUCK"}, action="abort", reason="x", actor="t")
    page = operator.get(reverse("admin:bpm_batch_changelist"))
    assert page.status_code == 200
    assert f'href="/admin/dashboard/batches/{batch.pk}/"' in page.content.decode()
    assert operator.get(reverse("admin:bpm_batch_add")).status_code == 403
