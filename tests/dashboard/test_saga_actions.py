"""The saga page's actions: confirmation with the preview, apply with a reason, every refusal."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from factories import UserFactory
from saga_page_kit import action_url, client_as, saga_url, stalled_before_pivot, stuck_after_pivot
from testkit import fresh

from bpm import services
from bpm.models import EventType, SagaStatus
from payments.services import customer_create

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}


@pytest.fixture
def stuck(the_world, drained):
    return stuck_after_pivot(the_world, drained, input={"n": 1})


@pytest.fixture
def operator():
    return client_as("olga", "operators")


def plan(html: str) -> list[str]:
    return re.findall(r"<li>((?:run|compensate) \w+)</li>", html)


def events_of(saga) -> list[tuple[str, str, str]]:
    return list(saga.events.values_list("type", "actor", "message"))


@pytest.mark.parametrize(
    ("action", "expected"),
    [("retry", ["run after"]), ("edit", ["run after"]), ("skip", []), ("abort", [])],
)
def test_the_confirmation_shows_what_will_run_and_asks_for_a_reason(
    stuck, operator, action, expected
):
    response = operator.get(action_url(stuck, action), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert plan(html) == expected
    if not expected:
        assert "Nothing more runs: the saga ends" in html
    assert 'name="reason"' in html and "csrfmiddlewaretoken" in html
    assert f'hx-post="{action_url(stuck, action)}"' in html
    assert "<html" not in html


def test_the_compensate_confirmation_lists_the_compensations(the_world, settings, operator):
    saga = stalled_before_pivot(settings, finished=1)
    html = operator.get(action_url(saga, "compensate"), headers=HTMX).content.decode()
    assert plan(html) == ["compensate a"]


def test_compensating_undoes_the_finished_steps_as_the_user(the_world, settings, operator, drained):
    saga = stalled_before_pivot(settings, finished=1)
    response = operator.post(action_url(saga, "compensate"), {"reason": "customer cancelled"})
    assert response.status_code == 302
    drained()
    assert fresh(saga).status == SagaStatus.COMPENSATED
    assert ("a", "COMPENSATION") in the_world.effects
    audit = saga.events.get(type=EventType.OPERATOR_COMPENSATE)
    assert (audit.actor, audit.message) == ("user:olga", "customer cancelled")


def test_without_htmx_the_confirmation_is_a_whole_page(stuck, operator):
    response = operator.get(action_url(stuck, "retry"))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert "hx-post" not in html and plan(html) == ["run after"]


@pytest.mark.parametrize(
    ("action", "data", "status"),
    [
        ("retry", {}, SagaStatus.RUNNING),
        ("edit", {"input": '{"n": 2}'}, SagaStatus.RUNNING),
        ("skip", {"output": '{"sent": "by hand"}'}, SagaStatus.COMPLETED),
        ("abort", {}, SagaStatus.ABORTED),
    ],
)
def test_applying_with_a_reason_acts_as_the_user_and_says_so(stuck, operator, action, data, status):
    response = operator.post(action_url(stuck, action), {"reason": "ticket 42", **data})
    assert response.status_code == 302 and response["Location"] == saga_url(stuck)
    assert fresh(stuck).status == status
    audit = stuck.events.get(type=f"OPERATOR_{'RETRY' if action == 'edit' else action.upper()}")
    assert (audit.actor, audit.message) == ("user:olga", "ticket 42")
    page = operator.get(response["Location"]).content.decode()
    assert "applied" in page  # the Django message
    assert "user:olga" in page and "ticket 42" in page
    assert 'data-user="olga"' in page  # the operator marker on the timeline


def test_the_edit_is_recorded_with_its_before_and_after(stuck, operator, drained):
    operator.post(action_url(stuck, "edit"), {"reason": "fix", "input": '{"n": 2}'})
    drained()
    saga = fresh(stuck)
    assert (saga.status, saga.input) == (SagaStatus.COMPLETED, {"n": 2})
    edit = saga.events.get(type=EventType.INPUT_EDITED)
    assert (edit.actor, edit.data) == ("user:olga", {"before": {"n": 1}, "after": {"n": 2}})


def test_with_htmx_success_replaces_the_live_region_with_a_notice(stuck, operator):
    response = operator.post(action_url(stuck, "retry"), {"reason": "mail is back"}, headers=HTMX)
    assert response.status_code == 200
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#saga-live", "outerHTML")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="saga-live"')
    # The notice is swapped out of band, outside the live region that polling replaces.
    notice = html[html.index('<div id="saga-notice"') :]
    assert 'hx-swap-oob="true"' in notice
    assert "Retry applied. Plan: run after. The saga is now RUNNING." in notice
    assert 'hx-trigger="every 2s"' in html  # running again, so the region polls


def test_a_missing_reason_is_an_error_and_changes_nothing(stuck, operator):
    before = events_of(stuck)
    response = operator.post(action_url(stuck, "abort"), {"reason": "   "}, headers=HTMX)
    assert response.status_code == 400
    html = response.content.decode()
    assert "A reason is required." in html and plan(html) == []
    assert "Nothing more runs: the saga ends" in html  # the preview is still shown
    assert fresh(stuck).status == SagaStatus.STUCK and events_of(stuck) == before


def test_invalid_json_is_an_error_that_keeps_the_text_and_changes_nothing(stuck, operator):
    before = events_of(stuck)
    typed = '{"n": 2,}'
    response = operator.post(action_url(stuck, "edit"), {"reason": "fix", "input": typed})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Not valid JSON: Expecting property name enclosed in double quotes" in html
    assert "(line 1, column 9)" in html
    assert "{&quot;n&quot;: 2,}</textarea>" in html and ">\nfix</textarea>" in html
    assert fresh(stuck).input == {"n": 1} and events_of(stuck) == before


@pytest.mark.parametrize(
    ("action", "field", "text", "message"),
    [
        ("edit", "input", "[1]", "Must be a JSON object, not list."),
        ("skip", "output", " ", "This field is required."),
        ("skip", "output", "nope", "Not valid JSON: Expecting value (line 1, column 1)."),
    ],
)
def test_an_editor_that_does_not_hold_a_json_object_is_refused(
    stuck, operator, action, field, text, message
):
    before = events_of(stuck)
    response = operator.post(action_url(stuck, action), {"reason": "by hand", field: text})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert fresh(stuck).status == SagaStatus.STUCK and events_of(stuck) == before


def test_skip_may_record_an_empty_output(stuck, operator):
    response = operator.post(action_url(stuck, "skip"), {"reason": "by hand", "output": "{}"})
    assert response.status_code == 302
    assert fresh(stuck).context["after"] == {}


@pytest.fixture
def ada():
    return customer_create(name="Ada", email="ada@bounce.invalid", credit_limit=Decimal("50.00"))


@pytest.fixture
def bounced(ada, drained):
    order = {
        "customer_id": ada.id,
        "products": [1, 2],
        "total": "12.34",
        "payment_method": "credit_card",
    }
    saga = services.saga_start(definition="place_order", input=order, actor="test")
    drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.STUCK
    return saga


def test_an_edit_the_schema_refuses_names_the_path_and_changes_nothing(bounced, operator):
    before = events_of(bounced)
    bad = {**bounced.input, "customer_id": "ada"}
    response = operator.post(
        action_url(bounced, "edit"),
        {"reason": "new address", "input": json.dumps(bad)},
        headers=HTMX,
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "input.customer_id: &#x27;ada&#x27; is not of type &#x27;integer&#x27;" in html
    assert fresh(bounced).input == bounced.input and events_of(bounced) == before


def test_the_editor_is_prefilled_with_the_input_and_carries_the_schema(bounced, operator):
    html = operator.get(action_url(bounced, "edit"), headers=HTMX).content.decode()
    assert "&quot;payment_method&quot;: &quot;credit_card&quot;" in html
    assert 'name="context"' in html
    assert 'id="saga-input-schema"' in html and "data-json-editor" in html
    # The check runs in a static script (the Content-Security-Policy allows no inline script).
    assert '<script src="/static/dashboard/json_editor.js"></script>' in html


def test_a_bounced_confirmation_is_fixed_by_editing_the_address_and_retrying(
    bounced, operator, drained
):
    # The recipient is the address take_payment recorded: corrected in the saga's context.
    paid = {**bounced.context["take_payment"], "customer_email": "ada@example.com"}
    response = operator.post(
        action_url(bounced, "edit"),
        {
            "reason": "customer gave a new address",
            "input": json.dumps(bounced.input),
            "context": json.dumps({"take_payment": paid}),
        },
    )
    assert response.status_code == 302
    drained()
    saga = fresh(bounced)
    assert saga.status == SagaStatus.COMPLETED
    assert saga.context["take_payment"]["customer_email"] == "ada@example.com"
    assert mail.outbox[-1].to == ["ada@example.com"]
    html = operator.get(saga_url(saga)).content.decode()
    assert "customer gave a new address" in html and 'data-user="olga"' in html


def test_a_viewer_gets_no_confirmation_and_a_forged_post_is_refused(stuck):
    viewer = client_as("vera", "viewers", enforce_csrf_checks=True)
    assert viewer.get(action_url(stuck, "retry")).status_code == 403
    # A valid CSRF token, taken from a page the viewer may see, does not make the POST allowed.
    viewer.get(saga_url(stuck))
    token = viewer.cookies["csrftoken"].value
    before = events_of(stuck)
    for action in ("retry", "skip", "abort", "compensate", "edit"):
        response = viewer.post(
            action_url(stuck, action),
            {"reason": "forged", "input": "{}", "output": "{}", "csrfmiddlewaretoken": token},
        )
        assert response.status_code == 403, action
    assert fresh(stuck).status == SagaStatus.STUCK and events_of(stuck) == before


def test_a_viewer_asking_through_htmx_gets_the_refusal_in_the_panel(stuck):
    viewer = client_as("vera", "viewers")
    response = viewer.post(action_url(stuck, "abort"), {"reason": "no"}, headers=HTMX)
    assert response.status_code == 403
    assert "vera may not abort sagas: that needs bpm.abort_saga." in response.content.decode()


def test_a_post_without_a_csrf_token_is_refused(stuck):
    operator = client_as("olga", "operators", enforce_csrf_checks=True)
    before = events_of(stuck)
    response = operator.post(action_url(stuck, "abort"), {"reason": "no token"})
    assert response.status_code == 403
    assert fresh(stuck).status == SagaStatus.STUCK and events_of(stuck) == before


def test_with_a_csrf_token_the_same_post_is_accepted(stuck):
    operator = client_as("olga", "operators", enforce_csrf_checks=True)
    html = operator.get(action_url(stuck, "abort")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = operator.post(
        action_url(stuck, "abort"), {"reason": "done by hand", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and fresh(stuck).status == SagaStatus.ABORTED


def test_the_second_of_two_operators_gets_the_conflict_and_keeps_their_form(stuck):
    first, second = client_as("olga", "operators"), client_as("omar", "operators")
    for operator in (first, second):
        assert plan(operator.get(action_url(stuck, "retry"), headers=HTMX).content.decode())
    applied = first.post(action_url(stuck, "retry"), {"reason": "mine"}, headers=HTMX)
    assert applied.status_code == 200
    response = second.post(action_url(stuck, "retry"), {"reason": "no, mine"}, headers=HTMX)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Another operator acted first, or the saga moved on" in html
    assert "it is RUNNING, not STUCK" in html and ">\nno, mine</textarea>" in html
    assert not stuck.events.filter(actor="user:omar").exists()
    assert fresh(stuck).status == SagaStatus.RUNNING


def test_a_plain_post_that_conflicts_renders_the_page_with_409(stuck):
    services.saga_abort(saga_id=stuck.id, reason="done", actor="test")
    response = client_as("olga", "operators").post(action_url(stuck, "retry"), {"reason": "x"})
    assert response.status_code == 409 and "<html" in response.content.decode()


def test_the_confirmation_of_an_action_the_state_forbids_is_a_conflict_without_a_form(
    stuck, operator
):
    response = operator.get(action_url(stuck, "compensate"), headers=HTMX)
    assert response.status_code == 409
    html = response.content.decode()
    assert "the pivot step &#x27;pivot&#x27; has committed" in html and "<form" not in html


def test_an_unknown_action_or_saga_is_not_found(stuck, operator):
    assert operator.get(action_url(stuck, "explode")).status_code == 404
    assert operator.get(f"/admin/dashboard/sagas/{'0' * 32}/retry/").status_code == 404


def test_only_get_and_post_are_allowed(stuck, operator):
    assert operator.delete(action_url(stuck, "retry")).status_code == 405


def test_an_action_needs_a_login(stuck):
    response = Client().post(action_url(stuck, "abort"), {"reason": "x"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert fresh(stuck).status == SagaStatus.STUCK


def test_a_user_who_may_retry_but_not_abort_sees_only_retry(stuck):
    from django.contrib.auth.models import Permission

    user = UserFactory(groups=["viewers"])
    user.user_permissions.add(Permission.objects.get(codename="retry_saga"))
    client = Client()
    client.force_login(user)
    html = client.get(saga_url(stuck)).content.decode()
    # Rerun and pause need the retry permission too.
    assert re.findall(r'data-action="(\w+)" href', html) == ["retry", "edit", "rerun", "pause"]
