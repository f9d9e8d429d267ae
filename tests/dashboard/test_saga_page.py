"""The saga page: who may see it, what it shows, its live region and its query count."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.test import Client
from factories import UserFactory
from saga_page_kit import (
    client_as,
    saga_url,
    stalled_before_pivot,
    stuck_after_pivot,
    stuck_compensating,
)
from testkit import declare, fresh

from bpm import engine, services
from bpm.dashboard.saga_actions import SERVICES
from bpm.dashboard.saga_page import ACTIONS
from bpm.declarations import RetryPolicy
from bpm.declarations import StepDeclaration as Step
from bpm.errors import Conflict, InvalidInput
from bpm.models import SagaStatus
from payments.services import customer_create

pytestmark = pytest.mark.django_db(transaction=True)

SVG = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert('owned')</script>"


@pytest.fixture
def stuck(the_world, drained):
    return stuck_after_pivot(the_world, drained, input={"note": EVIL})


@pytest.fixture
def viewer():
    return client_as("vera", "viewers")


@pytest.fixture
def operator():
    return client_as("olga", "operators")


def svg(html: str, css_class: str) -> ET.Element:
    """Return the inline <svg> of that class from a page, parsed."""
    match = re.search(rf'<svg [^>]*class="{css_class}".*?</svg>', html, re.DOTALL)
    assert match, f"no {css_class} svg on the page"
    return ET.fromstring(match.group(0))


def buttons(html: str) -> list[str]:
    return re.findall(r'class="button saga-action-button" data-action="(\w+)"', html)


def test_a_viewer_sees_the_steps_timeline_events_and_data_but_no_buttons(stuck, viewer):
    response = viewer.get(saga_url(stuck))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"with_pivot {stuck.id}" in html
    steps = {
        g.get("data-step"): g.get("data-state")
        for g in svg(html, "saga-diagram").iter(f"{SVG}g")
        if g.get("data-step")
    }
    assert steps == {"a": "done", "pivot": "done", "after": "failed"}
    lanes = [
        g.get("data-lane") for g in svg(html, "saga-timeline").iter(f"{SVG}g") if g.get("data-lane")
    ]
    assert lanes == ["saga", "a:FORWARD", "pivot:FORWARD", "after:FORWARD"]
    assert 'data-type="SAGA_STUCK"' in html and "after is unreachable" in html
    assert "<summary>Traceback</summary>" in html
    assert buttons(html) == []


def test_the_input_and_every_text_are_escaped(stuck, viewer):
    html = viewer.get(saga_url(stuck)).content.decode()
    assert EVIL not in html
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in html


def test_an_operator_sees_only_the_actions_the_state_allows(stuck, operator):
    html = operator.get(saga_url(stuck)).content.decode()
    # The pivot has committed, so compensating is not offered.
    assert buttons(html) == ["retry", "edit", "skip", "abort", "rerun", "pause"]
    assert 'id="saga-action-panel"' in html


def test_a_saga_stuck_before_its_pivot_may_also_be_compensated(the_world, settings, operator):
    saga = stalled_before_pivot(settings)
    html = operator.get(saga_url(saga)).content.decode()
    assert buttons(html) == ["retry", "edit", "skip", "compensate", "abort", "rerun", "pause"]


def test_the_buttons_offered_are_exactly_what_the_services_accept(the_world, drained, settings):
    user = UserFactory(groups=["operators"])
    client = Client()
    client.force_login(user)
    sagas = [
        stuck_after_pivot(the_world, drained),
        stuck_compensating(the_world, drained),
        stalled_before_pivot(settings),
    ]
    for saga in sagas:
        offered = buttons(client.get(saga_url(saga)).content.decode())
        accepted = []
        for name in ACTIONS:
            arguments = {}
            if name == "rerun":
                steps = services.rerun_steps(saga, engine.latest_runs(saga))
                arguments["step"] = steps[-1] if steps else "no-such-step"
            try:
                SERVICES[name](saga_id=saga.id, reason="look", user=user, preview=True, **arguments)
                accepted.append(name)
            except (Conflict, InvalidInput):
                pass
        assert offered == accepted, saga.stuck_reason


def test_a_settled_saga_offers_only_a_rerun_and_does_not_poll(the_world, drained, operator):
    saga = services.saga_start(definition=declare_one().name, input={}, actor="test")
    drained()
    html = operator.get(saga_url(saga)).content.decode()
    assert fresh(saga).status == SagaStatus.COMPLETED
    assert buttons(html) == ["rerun"] and "hx-trigger" not in html


def declare_one():
    return declare("one_step", Step("only", "test.remote", "test.remote"))


def test_a_running_saga_refreshes_its_live_region_every_two_seconds(the_world, viewer):
    saga = services.saga_start(definition=declare_one().name, input={}, actor="test")
    html = viewer.get(saga_url(saga)).content.decode()
    live = re.search(r'<div id="saga-live"[^>]*>', html).group(0)
    assert f'hx-get="{saga_url(saga)}"' in live
    assert 'hx-trigger="every 2s"' in live and 'hx-swap="outerHTML"' in live


def test_htmx_polling_gets_the_live_region_alone(the_world, viewer):
    saga = services.saga_start(definition=declare_one().name, input={}, actor="test")
    response = viewer.get(saga_url(saga), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="saga-live"') and "<html" not in html
    assert "HX-Request" in response["Vary"]


def test_an_unknown_saga_or_a_bad_id_is_not_found(viewer, stuck):
    assert viewer.get(f"/admin/dashboard/sagas/{uuid.uuid4()}/").status_code == 404
    assert viewer.get("/admin/dashboard/sagas/not-a-uuid/").status_code == 404


def test_the_place_order_saga_shows_its_bouncing_confirmation(drained, viewer):
    ada = customer_create(name="Ada", email="ada@bounce.invalid", credit_limit=Decimal("50.00"))
    order = {
        "customer_id": ada.id,
        "products": [1],
        "total": "9.99",
        "payment_method": "credit_card",
    }
    saga = services.saga_start(definition="place_order", input=order, actor="test")
    drained()
    html = viewer.get(saga_url(saga)).content.decode()
    diagram = svg(html, "saga-diagram")
    states = {g.get("data-step"): g.get("data-state") for g in diagram.iter(f"{SVG}g")}
    assert states["approve_order"] == "done" and states["send_confirmation"] == "failed"
    timeline = svg(html, "saga-timeline")
    confirmation = [
        bar.get("data-outcome")
        for bar in timeline.iter(f"{SVG}rect")
        if bar.get("data-lane") == "send_confirmation:FORWARD"
    ]
    assert confirmation == ["retried"] * 4 + ["exhausted"]
    gaps = [
        line
        for line in timeline.iter(f"{SVG}line")
        if line.get("class") == "timeline-backoff"
        and line.get("data-lane") == "send_confirmation:FORWARD"
    ]
    assert len(gaps) == 4


def a_saga_with_history(the_world, drained, faults: int, redrives: int):
    """Return a stuck saga whose only step failed `faults` times a run, over 1 + `redrives` runs."""
    name = f"flaky_{faults}"
    retry = RetryPolicy(max_attempts=faults, initial_backoff=1, max_backoff=1, jitter=0)
    declare(name, Step("only", "test.remote", kind="RETRIABLE", retry=retry))
    the_world.will("only", *["fault"] * faults)
    saga = services.saga_start(definition=name, input={}, actor="test")
    drained()
    for _ in range(redrives):
        # Each redrive is a new run of the step, so the runs grow with the events.
        the_world.will("only", *["fault"] * faults)
        services.saga_retry(saga_id=saga.id, reason="again", actor="test")
        drained()
    saga = fresh(saga)
    assert saga.status == SagaStatus.STUCK
    return saga


# The session, the user, the user's and their groups' permissions, then the saga with its
# definition, its steps, its runs and its events.
PAGE_QUERIES = 8


def test_the_page_costs_the_same_queries_for_a_short_and_a_long_history(
    the_world, drained, operator, django_assert_num_queries
):
    short = a_saga_with_history(the_world, drained, faults=1, redrives=2)
    long = a_saga_with_history(the_world, drained, faults=5, redrives=8)
    assert (short.step_runs.count(), long.step_runs.count()) == (3, 9)
    assert long.events.count() > 5 * short.events.count()
    for saga in (short, long):
        with django_assert_num_queries(PAGE_QUERIES):
            assert operator.get(saga_url(saga)).status_code == 200
