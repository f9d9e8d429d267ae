"""Retry, compensate and abort on selected sagas: a confirmation page with each saga's plan and a
required reason, then the action applied through the services and reported saga by saga."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from factories import UserFactory
from testkit import fresh

from bpm.admin.display import short_id
from bpm.models import EventType, SagaInstance, SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)

LIST = reverse("admin:bpm_sagainstance_changelist")


def choose(client: Client, action: str, *sagas: SagaInstance, **extra: str):
    """Post the changelist's action form, as choosing an action and pressing Go does."""
    data = {"action": action, "index": "0", "_selected_action": [s.pk for s in sagas], **extra}
    return client.post(LIST, data)


def confirm(client: Client, action: str, *sagas: SagaInstance, reason: str):
    """Post the confirmation page's form."""
    data = {
        "action": action,
        "post": "yes",
        "reason": reason,
        "_selected_action": [s.pk for s in sagas],
    }
    return client.post(LIST, data, follow=True)


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def offered(client: Client) -> list[str]:
    form = client.get(LIST).context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices if name]


def test_an_operator_is_offered_retry_compensate_and_abort(operator, stuck_after_pivot):
    assert offered(operator) == ["retry", "compensate", "abort", "skip", "edit", "pause", "resume"]


def test_a_viewer_is_offered_no_action(viewer, stuck_after_pivot):
    assert offered(viewer) == []


def test_each_action_is_offered_only_with_its_permission(stuck_after_pivot):
    user = UserFactory(groups=["viewers"])
    user.user_permissions.add(Permission.objects.get(codename="retry_saga"))
    client = Client()
    client.force_login(user)
    # Pausing and resuming need the retry permission too.
    assert offered(client) == ["retry", "edit", "pause", "resume"]


def test_choosing_retry_shows_each_sagas_plan_and_asks_for_a_reason(operator, stuck_after_pivot):
    events = stuck_after_pivot.events.count()
    response = choose(operator, "retry", stuck_after_pivot)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/bpm/sagainstance/action_confirmation.html"
    [preview] = response.context["previews"]
    assert (preview.saga, preview.plan, preview.refusal) == (stuck_after_pivot, ["run after"], "")
    page = response.content.decode()
    assert "csrfmiddlewaretoken" in page
    assert f'name="_selected_action" value="{stuck_after_pivot.pk}"' in page
    assert 'name="action" value="retry"' in page
    assert "<li>run after</li>" in page
    assert fresh(stuck_after_pivot).status == SagaStatus.STUCK
    assert stuck_after_pivot.events.count() == events


def test_the_confirmation_says_which_sagas_the_action_would_refuse(
    operator, stuck_after_pivot, completed_saga
):
    response = choose(operator, "compensate", stuck_after_pivot, completed_saga)
    refusals = {p.saga: p.refusal for p in response.context["previews"]}
    assert "the pivot step 'pivot' has committed" in refusals[stuck_after_pivot]
    assert "it is COMPLETED, not STUCK" in refusals[completed_saga]
    assert refusals[completed_saga].startswith("conflict — ")


@pytest.mark.parametrize("reason", ["", "   "])
def test_without_a_reason_the_page_comes_back_with_an_error_and_nothing_changes(
    operator, stuck_after_pivot, reason
):
    events = stuck_after_pivot.events.count()
    response = confirm(operator, "retry", stuck_after_pivot, reason=reason)
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "reason": ["A reason is required: it goes into each saga's timeline."]
    }
    assert "A reason is required" in response.content.decode()
    assert fresh(stuck_after_pivot).status == SagaStatus.STUCK
    assert stuck_after_pivot.events.count() == events


def test_retry_with_a_reason_reports_the_plan_and_records_who_and_why(
    operator, stuck_after_pivot, drained
):
    response = confirm(operator, "retry", stuck_after_pivot, reason="mail server is back")
    assert response.redirect_chain == [(LIST, 302)]
    assert said(response) == [f"saga {short_id(stuck_after_pivot.id)}: retried, will run after"]
    audit = stuck_after_pivot.events.get(type=EventType.OPERATOR_RETRY)
    assert (audit.actor, audit.message) == ("user:olga", "mail server is back")
    drained()
    assert fresh(stuck_after_pivot).status == SagaStatus.COMPLETED


def test_compensate_with_a_reason_undoes_the_finished_steps(operator, stuck_without_pivot, drained):
    response = confirm(operator, "compensate", stuck_without_pivot, reason="customer cancelled")
    [message] = said(response)
    assert message.startswith(f"saga {short_id(stuck_without_pivot.id)}: compensation started")
    assert "compensate b, then compensate a" in message
    audit = stuck_without_pivot.events.get(type=EventType.OPERATOR_COMPENSATE)
    assert (audit.actor, audit.message) == ("user:olga", "customer cancelled")
    drained()
    assert fresh(stuck_without_pivot).status == SagaStatus.COMPENSATED


def test_abort_with_a_reason_closes_the_saga(operator, stuck_after_pivot):
    response = confirm(operator, "abort", stuck_after_pivot, reason="mailed by hand")
    assert said(response) == [f"saga {short_id(stuck_after_pivot.id)}: aborted"]
    assert fresh(stuck_after_pivot).status == SagaStatus.ABORTED
    audit = stuck_after_pivot.events.get(type=EventType.OPERATOR_ABORT)
    assert (audit.actor, audit.message) == ("user:olga", "mailed by hand")


def test_a_mixed_selection_reports_a_success_and_a_conflict(
    operator, stuck_after_pivot, completed_saga
):
    response = confirm(operator, "retry", stuck_after_pivot, completed_saga, reason="try again")
    messages = {str(m): m.level_tag for m in get_messages(response.wsgi_request)}
    assert messages == {
        f"saga {short_id(stuck_after_pivot.id)}: retried, will run after": "success",
        f"saga {short_id(completed_saga.id)}: conflict — cannot retry saga {completed_saga.id}:"
        " it is COMPLETED, not STUCK": "warning",
    }
    assert fresh(stuck_after_pivot).status == SagaStatus.RUNNING
    assert fresh(completed_saga).status == SagaStatus.COMPLETED
    assert not completed_saga.events.filter(actor="user:olga").exists()


def test_a_compensation_refused_by_the_pivot_is_reported_and_changes_nothing(
    operator, stuck_after_pivot
):
    response = confirm(operator, "compensate", stuck_after_pivot, reason="undo it all")
    [message] = said(response)
    assert "conflict — the pivot step 'pivot' has committed" in message
    assert fresh(stuck_after_pivot).status == SagaStatus.STUCK


@pytest.mark.parametrize("action", ["retry", "compensate", "abort"])
def test_a_viewers_forged_action_is_refused_and_changes_nothing(viewer, stuck_after_pivot, action):
    events = stuck_after_pivot.events.count()
    for response in (
        choose(viewer, action, stuck_after_pivot),
        confirm(viewer, action, stuck_after_pivot, reason="let me"),
    ):
        assert response.status_code == 200
        assert "previews" not in response.context
    assert fresh(stuck_after_pivot).status == SagaStatus.STUCK
    assert stuck_after_pivot.events.count() == events


def test_an_action_posted_without_the_csrf_token_is_refused(stuck_after_pivot):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(groups=["operators"]))
    response = confirm(client, "abort", stuck_after_pivot, reason="no token")
    assert response.status_code == 403
    assert fresh(stuck_after_pivot).status == SagaStatus.STUCK


def test_a_selection_too_large_for_one_page_is_refused(operator, stuck_after_pivot):
    SagaInstance.objects.bulk_create(
        SagaInstance(definition=stuck_after_pivot.definition, definition_name="with_pivot")
        for _ in range(100)
    )
    response = choose(operator, "abort", *SagaInstance.objects.all())
    assert response.status_code == 302
    response = operator.get(response.url)
    assert said(response) == ["Select at most 100 sagas at a time; nothing was changed."]
    assert fresh(stuck_after_pivot).status == SagaStatus.STUCK
