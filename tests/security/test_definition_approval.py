"""Issue 9, item 4: changing what a definition runs takes two designers.

An operator could compose place_order v2 without take_payment, and every new order was approved
without a charge. Now composing needs `bpm.compose_sagadefinition` (the designers group), a
composed version is a draft that starts no saga and shows its changes against the published
version, and only a second designer may approve it; a superuser included, nobody approves their
own draft. Composing, approving and rejecting are recorded on the version and in its audit trail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from factories import CustomerFactory, UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from testkit import drain

from bpm import definitions, drafts, services
from bpm.errors import Conflict, NotFound, PermissionDenied
from bpm.models import DefinitionEvent, SagaDefinition, SagaInstance
from orders.models import Order, OrderState
from orders.sagas import place_order
from payments.models import Payment

pytestmark = pytest.mark.django_db

ADD = reverse("admin:bpm_sagadefinition_add")
PASSWORD = "secret-password"


def change_url(definition: SagaDefinition) -> str:
    return reverse("admin:bpm_sagadefinition_change", args=[definition.pk])


def approve_url(definition: SagaDefinition) -> str:
    return reverse("admin:bpm_sagadefinition_approve", args=[definition.pk])


def reject_url(definition: SagaDefinition) -> str:
    return reverse("admin:bpm_sagadefinition_reject", args=[definition.pk])


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def designer(username: str) -> Any:
    return UserFactory(username=username, groups=["designers"])


@pytest.fixture
def v1() -> SagaDefinition:
    """Return place_order v1, as a deployment publishes it from code."""
    definition, _ = definitions.sync_declaration(place_order())
    return definition


def without_payment(source: SagaDefinition, **fields: str) -> dict[str, str]:
    """Return the compose form's POST data: `source` duplicated, its take_payment row left out."""
    steps = list(source.steps.order_by("position"))
    data = {
        "name": source.name,
        "title": source.title,
        "description": source.description,
        "input_schema": json.dumps(source.input_schema),
        "change_reason": "payment is taken by the shop now",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, step in enumerate(steps):
        row = {
            "position": step.position,
            "name": step.name,
            "action": step.action,
            "compensation": step.compensation,
            "kind": step.kind,
            "max_attempts": step.max_attempts,
            "initial_backoff": step.initial_backoff,
            "backoff_multiplier": step.backoff_multiplier,
            "max_backoff": step.max_backoff,
            "jitter": step.jitter,
            "timeout": step.timeout,
            "queue": step.queue,
        }
        if step.name == "take_payment":
            row["omit"] = "on"
        data.update({f"steps-{index}-{key}": str(value) for key, value in row.items()})
    return data


def compose(client: Client, source: SagaDefinition) -> SagaDefinition:
    """Compose place_order without take_payment through the admin and return the new version."""
    response = client.post(ADD, without_payment(source))
    assert response.status_code == 302, response.content.decode()[:2000]
    return SagaDefinition.objects.get(name=source.name, version=source.version + 1)


@pytest.fixture
def dora() -> Any:
    """The designer who composes."""
    return designer("dora")


@pytest.fixture
def draft(v1: SagaDefinition, dora: Any) -> SagaDefinition:
    """Return place_order v2 without take_payment, composed by dora in the admin."""
    return compose(logged_in(dora), v1)


def token_client(group: str, username: str) -> APIClient:
    user = UserFactory(username=username, groups=[group], is_staff=False)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def order_input(customer_id: int) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "products": [1],
        "total": "10.00",
        "payment_method": "credit_card",
    }


def started_versions() -> list[int]:
    """Return the place_order version of every saga, oldest first."""
    sagas = SagaInstance.objects.filter(definition_name="place_order").order_by("created_at")
    return [saga.definition.version for saga in sagas.select_related("definition")]


def start_through_service_and_api(customer_id: int) -> list[int]:
    """Start one place_order saga through the service, one through each API endpoint."""
    before = SagaInstance.objects.count()
    services.saga_start(definition="place_order", input=order_input(customer_id), actor="test")
    shop = token_client("clients", f"shop{before}")
    body = {"definition": "place_order", "input": order_input(customer_id)}
    response = shop.post("/api/v1/sagas/", body, format="json")
    assert response.status_code == 201, response.json()
    order = {key: value for key, value in order_input(customer_id).items() if key != "products"}
    response = shop.post("/api/v1/orders/", {**order, "products": [1]}, format="json")
    assert response.status_code == 201, response.json()
    return started_versions()[before:]


# --- who may compose ----------------------------------------------------------------------------


def test_the_groups_give_composing_to_designers_and_take_it_from_operators():
    operators = Group.objects.get(name="operators").permissions.values_list("codename", flat=True)
    designers = Group.objects.get(name="designers").permissions.values_list("codename", flat=True)
    assert "compose_sagadefinition" in set(designers)
    assert {"view_sagadefinition", "view_sagainstance", "view_order"} <= set(designers)
    assert not {"add_sagadefinition", "add_stepdefinition", "compose_sagadefinition"} & set(
        operators
    )
    assert "retry_saga" not in set(designers)


def test_an_operator_cannot_compose_a_version(v1):
    olga = logged_in(UserFactory(username="olga", groups=["operators"]))
    assert olga.get(ADD).status_code == 403
    assert olga.post(ADD, without_payment(v1)).status_code == 403
    assert "Duplicate as new version" not in olga.get(change_url(v1)).content.decode()
    assert list(SagaDefinition.objects.filter(name="place_order").values_list("version")) == [(1,)]
    with pytest.raises(PermissionDenied, match=r"needs the bpm\.compose_sagadefinition"):
        drafts.definition_compose(
            declaration=definitions.declaration_of(v1),
            user=UserFactory(groups=["operators"]),
            reason="sneaky",
        )


def test_composing_needs_a_reason(v1, dora):
    response = logged_in(dora).post(ADD, without_payment(v1, change_reason=""))
    assert "A reason is required" in response.content.decode()
    assert SagaDefinition.objects.filter(name="place_order").count() == 1


# --- a draft starts nothing ---------------------------------------------------------------------


def test_a_composed_version_is_a_draft_and_sagas_still_start_on_the_published_one(draft, v1):
    assert (draft.status, draft.composed_by.username) == ("DRAFT", "dora")
    assert draft.change_reason == "payment is taken by the shop now"
    assert [s.name for s in draft.steps.order_by("position")] == [
        "create_order",
        "approve_order",
        "send_confirmation",
    ]
    customer = CustomerFactory()
    assert start_through_service_and_api(customer.id) == [1, 1, 1]
    assert definitions.resolve("place_order") == v1


def test_a_draft_cannot_be_started_by_naming_its_version(draft):
    customer = CustomerFactory()
    with pytest.raises(NotFound, match="version 2 is DRAFT, not published: it starts no saga"):
        services.saga_start(
            definition="place_order", version=2, input=order_input(customer.id), actor="test"
        )
    shop = token_client("clients", "shop")
    body = {"definition": "place_order", "version": 2, "input": order_input(customer.id)}
    response = shop.post("/api/v1/sagas/", body, format="json")
    assert response.status_code == 400
    assert "DRAFT, not published" in json.dumps(response.json())
    with pytest.raises(Conflict, match="place_order v2 is DRAFT, not published"):
        from bpm import engine

        engine.start(definition=draft, input=order_input(customer.id), actor="test")
    assert not SagaInstance.objects.exists()


def test_the_api_lists_only_published_versions(draft, v1):
    shop = token_client("clients", "shop")
    [summary] = [d for d in shop.get("/api/v1/definitions/").json() if d["name"] == "place_order"]
    assert (summary["latest_version"], summary["versions"]) == (1, [1])
    detail = shop.get("/api/v1/definitions/place_order/").json()
    assert [version["version"] for version in detail["versions"]] == [1]


def test_a_drafts_page_shows_take_payment_removed_and_what_moved(draft, dora):
    page = logged_in(dora).get(change_url(draft)).content.decode()
    assert 'data-base="place_order v1"' in page
    assert 'data-change="removed" data-step="take_payment"' in page
    assert 'data-change="changed" data-step="approve_order"' in page
    assert '<li data-field="position">position: <code>3</code> → <code>2</code></li>' in page
    assert "starts no saga until a designer other than its composer approves it" in page
    changes = drafts.changes_of(draft)
    assert [step.name for step in changes.removed] == ["take_payment"]
    assert changes.removed[0].action == "payments.take_payment"
    assert not changes.added
    assert {step.name: [f.field for f in step.fields] for step in changes.changed} == {
        "approve_order": ["position"],
        "send_confirmation": ["position"],
    }
    assert not changes.schema


def test_the_diff_names_each_changed_field_and_schema_part(v1, dora):
    data = without_payment(v1)
    data["steps-1-omit"] = ""  # keep take_payment, with other retries
    data["steps-1-max_attempts"] = "9"
    schema = {**v1.input_schema, "required": ["customer_id"]}
    schema["properties"] = {**schema["properties"], "coupon": {"type": "string"}}
    data["input_schema"] = json.dumps(schema)
    assert logged_in(dora).post(ADD, data).status_code == 302
    draft = SagaDefinition.objects.get(name="place_order", version=2)
    changes = drafts.changes_of(draft)
    [changed] = changes.changed
    assert (changed.name, [(f.field, f.before, f.after) for f in changed.fields]) == (
        "take_payment",
        [("max_attempts", v1.steps.get(name="take_payment").max_attempts, 9)],
    )
    kinds = {(change.kind, change.path) for change in changes.schema}
    assert ("added", "/properties/coupon") in kinds
    assert ("changed", "/required") in kinds
    page = logged_in(dora).get(change_url(draft)).content.decode()
    assert 'data-change="added" data-path="/properties/coupon"' in page


def test_the_dashboard_marks_the_draft_and_shows_its_changes(draft, dora):
    viewer = logged_in(UserFactory(username="vera", groups=["viewers"]))
    listing = viewer.get(reverse("dashboard:definitions")).content.decode()
    assert 'data-status="DRAFT">(DRAFT)</span>' in listing
    default = viewer.get(reverse("dashboard:definition", args=["place_order"]))
    assert default.context["definition"].version == 1
    page = viewer.get(reverse("dashboard:definition", args=["place_order"]), {"version": 2})
    assert 'data-change="removed" data-step="take_payment"' in page.content.decode()


# --- four eyes ----------------------------------------------------------------------------------


def test_the_composer_cannot_approve_their_own_draft(draft, dora):
    client = logged_in(dora)
    page = client.get(change_url(draft)).content.decode()
    assert "Approve and publish" not in page
    assert "dora composed place_order v2 and may not approve it" in page
    assert client.get(approve_url(draft)).status_code == 403
    assert client.post(approve_url(draft), {"text": "looks fine to me"}).status_code == 403
    draft.refresh_from_db()
    assert draft.status == "DRAFT"
    with pytest.raises(PermissionDenied, match="a second designer must approve"):
        drafts.definition_approve(definition_id=draft.pk, user=dora, comment="me again")


def test_a_superuser_cannot_approve_their_own_draft_either(v1):
    root = UserFactory(username="root", is_superuser=True)
    client = logged_in(root)
    draft = compose(client, v1)
    assert client.post(approve_url(draft), {"text": "trust me"}).status_code == 403
    draft.refresh_from_db()
    assert draft.status == "DRAFT"
    assert started_versions() == []
    services.saga_start(
        definition="place_order", input=order_input(CustomerFactory().id), actor="test"
    )
    assert started_versions() == [1]


@pytest.mark.django_db(transaction=True)  # the sagas run on a worker, after their commits
def test_a_second_designer_approves_and_new_sagas_start_on_the_new_version(draft, the_world):
    dave = designer("dave")
    client = logged_in(dave)
    page = client.get(change_url(draft)).content.decode()
    assert f'href="{approve_url(draft)}"' in page
    review = client.get(approve_url(draft)).content.decode()
    assert 'data-change="removed" data-step="take_payment"' in review
    response = client.post(approve_url(draft), {"text": "agreed with finance"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.reviewed_by, draft.review_comment) == (
        "PUBLISHED",
        dave,
        "agreed with finance",
    )
    assert draft.reviewed_at is not None
    customer = CustomerFactory(credit_limit="500.00")
    assert start_through_service_and_api(customer.id) == [2, 2, 2]
    drain()
    # What the issue feared, now a decision two people took: orders approved without a charge.
    assert set(Order.objects.values_list("state", flat=True)) == {OrderState.APPROVED}
    assert not Payment.objects.exists()


def test_composing_and_reviewing_are_audited_and_shown(draft, dora):
    dave = designer("dave")
    logged_in(dave).post(approve_url(draft), {"text": "agreed with finance"})
    trail = [
        (event.type, event.actor, event.comment)
        for event in DefinitionEvent.objects.filter(definition=draft)
    ]
    assert trail == [
        ("COMPOSED", "user:dora", "payment is taken by the shop now"),
        ("APPROVED", "user:dave", "agreed with finance"),
    ]
    page = logged_in(dora).get(change_url(draft)).content.decode()
    for text in ("user:dora", "user:dave", "agreed with finance", "PUBLISHED"):
        assert text in page
    listing = logged_in(dora).get(reverse("admin:bpm_sagadefinition_changelist")).content
    assert b"dave" in listing


def test_a_draft_is_rejected_with_a_reason_and_never_starts(draft):
    dave = designer("dave")
    client = logged_in(dave)
    assert "A reason is required" in client.post(reject_url(draft), {"text": " "}).content.decode()
    assert client.post(reject_url(draft), {"text": "payment must stay"}).status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.reviewed_by, draft.review_comment) == (
        "REJECTED",
        dave,
        "payment must stay",
    )
    assert DefinitionEvent.objects.filter(definition=draft).last().type == "REJECTED"
    # Rejected is final: approving it later is refused, and it still starts nothing.
    response = logged_in(designer("erin")).post(approve_url(draft), {"text": "ok"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "REJECTED"
    with pytest.raises(NotFound, match="version 2 is REJECTED"):
        definitions.resolve("place_order", 2)


def test_the_composer_may_withdraw_their_own_draft(draft, dora):
    assert logged_in(dora).post(reject_url(draft), {"text": "wrong idea"}).status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.reviewed_by) == ("REJECTED", dora)


def test_a_draft_overtaken_by_a_deployment_cannot_be_approved(draft):
    # A deployment publishes a changed declaration as v3 while the draft waits.
    changed = place_order(backoff_scale=0.5)
    v3, created = definitions.sync_declaration(changed)
    assert (created, v3.version, v3.status) == (True, 3, "PUBLISHED")
    with pytest.raises(Conflict, match="place_order v3 was published after place_order v2"):
        drafts.definition_approve(definition_id=draft.pk, user=designer("dave"), comment="ok")
    assert definitions.resolve("place_order") == v3


# --- every role against every URL and method ----------------------------------------------------

ROLES = ("anonymous", "client", "viewer", "operator", "designer", "superuser")
REQUESTS = [
    ("compose", "GET"),
    ("compose", "POST"),
    ("approve", "GET"),
    ("approve", "POST"),
    ("reject", "GET"),
    ("reject", "POST"),
]
# What each role gets: 302 to the login page, 403, or the page (200) / the change applied (302).
ALLOWED = {"designer", "superuser"}


def client_as(role: str) -> Client:
    if role == "anonymous":
        return Client()
    if role == "superuser":
        return logged_in(UserFactory(username="root", is_superuser=True))
    group = {"client": "clients", "viewer": "viewers", "operator": "operators"}.get(role)
    user = UserFactory(
        username=f"the-{role}",
        groups=[group or "designers"],
        is_staff=role != "client",
    )
    return logged_in(user)


@pytest.mark.parametrize(("target", "method"), REQUESTS)
@pytest.mark.parametrize("role", ROLES)
def test_every_role_against_every_review_url(draft, v1, role, target, method):
    client = client_as(role)
    url = {"compose": ADD, "approve": approve_url(draft), "reject": reject_url(draft)}[target]
    body = without_payment(v1, change_reason="again") if target == "compose" else {"text": "ok"}
    response = client.get(url) if method == "GET" else client.post(url, body)
    draft.refresh_from_db()
    versions = SagaDefinition.objects.filter(name="place_order").count()
    if role in ("anonymous", "client"):
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
    elif role not in ALLOWED:
        assert response.status_code == 403
    elif method == "GET":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
    applied = role in ALLOWED and method == "POST"
    expected_status = {"approve": "PUBLISHED", "reject": "REJECTED"}.get(target, "DRAFT")
    assert draft.status == (expected_status if applied else "DRAFT")
    # Composing the same steps again finds the waiting draft: still two versions.
    assert versions == 2
