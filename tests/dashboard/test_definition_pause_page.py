"""Pausing and resuming a definition version from the definitions page, per role, and every
hostile input: no reason, too long, a version that is no number, an unknown one, a second pause."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from factories import UserFactory
from saga_page_kit import client_as
from saga_rows import make_sagas
from testkit import three_steps

from bpm import services
from bpm.models import PauseScope, SagaDefinition, SagaInstance, SagaStatus
from bpm.states import DefinitionEventType, DefinitionStatus

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def definition():
    definition = three_steps()
    make_sagas(definition, 3, status=SagaStatus.RUNNING)
    make_sagas(definition, 1, status=SagaStatus.STUCK, stuck_reason="TIMED_OUT")
    make_sagas(definition, 2, status=SagaStatus.COMPLETED)
    return definition


@pytest.fixture
def operator():
    return client_as("olga", "operators")


def url(definition, action="pause", version=None):
    path = reverse("dashboard:definition_pause", args=[definition.name, action])
    return f"{path}?version={definition.version if version is None else version}"


def post(client, definition, action="pause", version=None, headers=None, **data):
    path = reverse("dashboard:definition_pause", args=[definition.name, action])
    body = {"version": definition.version if version is None else version, **data}
    return client.post(path, body, headers=headers or {})


def detail(definition):
    return f"{reverse('dashboard:definition', args=[definition.name])}?version={definition.version}"


def again(definition):
    return SagaDefinition.objects.get(pk=definition.pk)


def audit(definition):
    """Return the version's pauses and resumes: (type, actor, comment), oldest first."""
    pauses = (DefinitionEventType.PAUSED, DefinitionEventType.RESUMED)
    entries = definition.audit_events.filter(type__in=pauses).order_by("at", "pk")
    return list(entries.values_list("type", "actor", "comment"))


def held(definition):
    return SagaInstance.objects.filter(definition=definition, paused=PauseScope.DEFINITION).count()


# --- the operator ---------------------------------------------------------------------------


def test_the_operator_sees_the_action_on_the_page_and_the_list(operator, definition):
    html = operator.get(detail(definition)).content.decode()
    assert "Pause this version…" in html
    assert f'hx-get="{url(definition)}"' in html and 'id="definition-action-panel"' in html
    listing = operator.get(reverse("dashboard:definitions")).content.decode()
    assert f'href="{url(definition)}"' in listing


def test_the_confirmation_previews_the_sagas_it_holds_and_asks_for_a_reason(operator, definition):
    response = operator.get(url(definition), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert 'data-sagas="4"' in html and "holds <strong>4</strong> unfinished sagas" in html
    assert "a step already running finishes" in html
    assert 'name="reason"' in html and "csrfmiddlewaretoken" in html
    assert f'name="version" value="{definition.version}"' in html
    whole = operator.get(url(definition))
    assert whole.status_code == 200 and "<html" in whole.content.decode()


def test_pausing_holds_the_sagas_and_the_pages_say_since_when_and_by_whom(operator, definition):
    response = post(operator, definition, reason="supplier outage")
    assert response.status_code == 302 and response["Location"] == detail(definition)
    definition = again(definition)
    assert definition.paused_at is not None
    assert held(definition) == 4
    assert audit(definition)[-1] == (DefinitionEventType.PAUSED, "user:olga", "supplier outage")
    page = operator.get(response["Location"]).content.decode()
    assert "paused: 4 unfinished sagas held" in page
    assert "paused since" in page and "by user:olga" in page and "Resume…" in page
    listing = operator.get(reverse("dashboard:definitions")).content.decode()
    assert f'data-paused="{definition.version}"' in listing and "by user:olga" in listing
    assert f'href="{url(definition, "resume")}"' in listing


def test_resuming_previews_then_lets_the_held_sagas_go(operator, definition):
    services.definition_pause(
        name=definition.name, version=definition.version, reason="x", actor="test"
    )
    html = operator.get(url(definition, "resume"), headers=HTMX).content.decode()
    assert 'data-sagas="4"' in html and "lets <strong>4</strong> sagas" in html
    response = post(operator, definition, "resume", headers=HTMX, reason="supplier back")
    assert response.status_code == 200 and response["HX-Redirect"] == detail(definition)
    definition = again(definition)
    assert definition.paused_at is None and held(definition) == 0
    assert audit(definition)[-1] == (DefinitionEventType.RESUMED, "user:olga", "supplier back")
    assert "paused since" not in operator.get(detail(definition)).content.decode()


def test_through_htmx_a_pause_answers_with_a_redirect_to_the_page(operator, definition):
    response = post(operator, definition, headers=HTMX, reason="hold")
    assert response.status_code == 200 and response["HX-Redirect"] == detail(definition)
    assert again(definition).paused_at is not None


# --- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "A reason is required."), ("   ", "A reason is required."), ("x" * 1001, "at most 1000")],
)
def test_a_missing_or_too_long_reason_is_400_with_the_field_error(
    operator, definition, reason, message
):
    for headers in (HTMX, None):
        response = post(operator, definition, headers=headers, reason=reason)
        assert response.status_code == 400
        html = response.content.decode()
        assert message in html and 'class="errorlist' in html
        assert 'name="reason"' in html  # the form stays, to correct
    assert again(definition).paused_at is None and audit(definition) == []


@pytest.mark.parametrize("version", ["abc", "1.5", "", "1%3Cscript%3E"])
def test_a_version_that_is_no_number_is_400(operator, definition, version):
    response = operator.get(url(definition, version=version), headers=HTMX)
    assert response.status_code == 400
    assert "is not a version number" in response.content.decode()
    response = post(operator, definition, version=version, reason="x")
    assert response.status_code == 400
    assert "<script>" not in response.content.decode()
    assert again(definition).paused_at is None


def test_an_unknown_version_or_definition_or_action_is_404(operator, definition):
    assert operator.get(url(definition, version=99)).status_code == 404
    assert post(operator, definition, version=99, reason="x").status_code == 404
    path = reverse("dashboard:definition_pause", args=["nope", "pause"])
    assert operator.post(path, {"version": 1, "reason": "x"}).status_code == 404
    path = f"{reverse('dashboard:definition', args=[definition.name])}delete/"
    assert operator.post(path, {"version": 1, "reason": "x"}).status_code == 404
    assert again(definition).paused_at is None


def test_pausing_a_paused_version_is_409_with_the_conflict(operator, definition):
    assert post(operator, definition, reason="first").status_code == 302
    first = again(definition).paused_at
    page = operator.get(url(definition), headers=HTMX)
    assert page.status_code == 409
    assert "is already paused" in page.content.decode()
    assert 'name="reason"' not in page.content.decode()  # nothing to fill in
    for headers in (HTMX, None):
        response = post(operator, definition, headers=headers, reason="second")
        assert response.status_code == 409
        html = response.content.decode()
        assert "Another operator acted first" in html and "is already paused" in html
    assert again(definition).paused_at == first
    assert [entry[0] for entry in audit(definition)] == [DefinitionEventType.PAUSED]


def test_resuming_a_version_that_is_not_paused_is_409(operator, definition):
    response = post(operator, definition, "resume", headers=HTMX, reason="go")
    assert response.status_code == 409 and "is not paused" in response.content.decode()
    assert audit(definition) == []


def test_a_version_that_is_not_published_may_not_be_paused(operator, definition):
    SagaDefinition.objects.filter(pk=definition.pk).update(status=DefinitionStatus.DRAFT)
    assert "Pause this version…" not in operator.get(detail(definition)).content.decode()
    page = operator.get(url(definition), headers=HTMX)
    assert page.status_code == 409 and "only a published version can be paused" in page.text
    response = post(operator, definition, reason="hold")
    assert response.status_code == 409 and "only a published version" in response.text
    assert again(definition).paused_at is None and audit(definition) == []


def test_a_get_never_pauses(operator, definition):
    operator.get(url(definition) + "&reason=sneaky")
    assert again(definition).paused_at is None


# --- the other roles ------------------------------------------------------------------------


def test_a_viewer_sees_the_pause_but_no_action_and_is_refused_with_a_hint(definition):
    services.definition_pause(
        name=definition.name, version=definition.version, reason="x", actor="user:olga"
    )
    viewer = client_as("vera", "viewers")
    html = viewer.get(detail(definition)).content.decode()
    assert "paused since" in html and "by user:olga" in html
    assert "Resume…" not in html and "Pause this version…" not in html
    listing = viewer.get(reverse("dashboard:definitions")).content.decode()
    assert "by user:olga" in listing and "definition-pause-link" not in listing
    refusal = "vera may not resume definition versions: that needs bpm.retry_saga"
    whole = viewer.get(url(definition, "resume"))
    assert whole.status_code == 403
    page = whole.content.decode()
    # Django's 403 page, styled, with the reason (capitalised) and the hint to log in as another.
    assert refusal[0].upper() + refusal[1:] in page and "data-error-message" in page
    assert "Log in as another user" in page and "You are logged in as <strong>vera</strong>" in page
    panel = viewer.post(
        reverse("dashboard:definition_pause", args=[definition.name, "resume"]),
        {"version": definition.version, "reason": "forged"},
        headers=HTMX,
    )
    assert panel.status_code == 403
    html = panel.content.decode()
    assert refusal in html and "Operators may pause and resume" in html
    assert again(definition).paused_at is not None


def test_a_viewer_with_a_csrf_token_still_may_not_pause(definition):
    viewer = client_as("vera", "viewers", enforce_csrf_checks=True)
    viewer.get(detail(definition))
    token = viewer.cookies["csrftoken"].value
    response = post(viewer, definition, reason="forged", csrfmiddlewaretoken=token)
    assert response.status_code == 403
    assert again(definition).paused_at is None and held(definition) == 0


def test_an_anonymous_visitor_is_sent_to_the_login(client, definition):
    response = client.get(url(definition))
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = post(client, definition, reason="x")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert again(definition).paused_at is None


def test_an_api_clients_user_is_refused(definition):
    for staff in (True, False):
        shop = Client()
        shop.force_login(UserFactory(groups=["clients"], is_staff=staff))
        response = post(shop, definition, reason="x")
        assert response.status_code in (302, 403)
        if response.status_code == 302:
            assert "/login/" in response["Location"]
    assert again(definition).paused_at is None


def test_a_csrf_less_post_from_an_operator_is_refused(definition):
    operator = client_as("olga", "operators", enforce_csrf_checks=True)
    assert post(operator, definition, reason="no token").status_code == 403
    assert again(definition).paused_at is None
    assert audit(definition) == []
