"""What a step raised reaches viewers and operators as it was; a client sees a stable code.

A fault's text is whatever broke inside (here PostgreSQL's "bigint out of range", or SQLite's
overflow): a client reading its own saga sees INTERNAL_ERROR and a message that says nothing of
it, while a business refusal keeps its own code and message, which are meant for the client.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from factories import UserFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from testkit import FAST, declare, work

from bpm import registry, services
from bpm.context import StepContext
from bpm.declarations import RETRIABLE
from bpm.declarations import StepDeclaration as Step
from bpm.errors import StepFailed
from bpm.models import SagaStatus

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1/sagas"
SECRET = "table shop_internal on db-7.corp"
FAULT_CODE = "INTERNAL_ERROR"
FAULT_MESSAGE = "the step failed with a technical fault; an operator can see the details"
OPERATOR_MESSAGE = "an operator stopped the saga; an operator can see the reason"


@registry.handler("security.overflowing")
def overflowing(ctx: StepContext) -> dict[str, Any]:
    """Store a number no bigint holds: the database's own words become the error."""
    with transaction.atomic(), connection.cursor() as cursor:
        # PostgreSQL: "bigint out of range"; SQLite's driver: "Python int too large to convert".
        cursor.execute("SELECT CAST(%s AS BIGINT)", [2**70])
        cursor.fetchone()
    return {}


@registry.handler("security.refusing")
def refusing(ctx: StepContext) -> dict[str, Any]:
    raise StepFailed("OUT_OF_STOCK", "product 7 is out of stock")


@registry.handler("security.failing")
def failing(ctx: StepContext) -> dict[str, Any]:
    raise ConnectionError(f"cannot reach {SECRET}")


@registry.handler("security.fine")
def fine(ctx: StepContext) -> dict[str, Any]:
    return {}


def token_client(user) -> APIClient:
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


@pytest.fixture
def shop():
    return UserFactory(username="shop", groups=["clients"], is_staff=False)


def start(name: str, second: str, owner, *, kind: str = "COMPENSATABLE") -> str:
    """Start, as the client `owner` through the API, a saga whose second step runs `second`."""
    compensation = "security.fine" if kind == "COMPENSATABLE" else ""
    declare(
        name,
        Step("first", "security.fine", "security.fine", retry=FAST),
        Step("second", second, compensation, kind=kind, retry=FAST),
    )
    response = token_client(owner).post(f"{API}/", {"definition": name, "input": {}})
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def step(saga: dict, name: str) -> dict:
    return next(s for s in saga["steps"] if s["name"] == name)


def test_a_client_sees_a_database_fault_as_internal_error_and_a_viewer_sees_it_all(shop, drained):
    saga_id = start("overflow", "security.overflowing", shop)
    drained()
    mine = token_client(shop).get(f"{API}/{saga_id}/").json()
    assert mine["status"] == SagaStatus.COMPENSATED
    assert mine["failure"] == {
        "step": "second",
        "kind": "EXHAUSTED",
        "code": FAULT_CODE,
        "message": FAULT_MESSAGE,
    }
    assert step(mine, "second")["last_error"] == FAULT_MESSAGE
    viewer = token_client(UserFactory(username="vera", groups=["viewers"]))
    full = viewer.get(f"{API}/{saga_id}/").json()
    raw = full["failure"]["message"]
    assert "out of range" in raw or "too large" in raw
    assert step(full, "second")["last_error"] == raw
    assert full["failure"]["code"] == "RETRIES_EXHAUSTED"


def test_a_fault_still_being_retried_is_hidden_from_the_client_too(shop, drained):
    saga_id = start("unreachable", "security.failing", shop)
    work()  # the first step, then one failed attempt of the second
    work()
    mine = token_client(shop).get(f"{API}/{saga_id}/").json()
    assert mine["status"] == SagaStatus.RUNNING
    assert step(mine, "second")["last_error"] == FAULT_MESSAGE
    assert SECRET not in str(mine)


def test_a_business_refusal_reaches_the_client_with_its_own_code_and_message(shop, drained):
    saga_id = start("refusal", "security.refusing", shop)
    drained()
    mine = token_client(shop).get(f"{API}/{saga_id}/").json()
    assert mine["failure"]["code"] == "OUT_OF_STOCK"
    assert mine["failure"]["message"] == "product 7 is out of stock"
    assert step(mine, "second")["last_error"] == "product 7 is out of stock"


def test_an_operators_reason_for_compensating_stays_with_the_operators(shop, drained):
    saga_id = start("stuck", "security.failing", shop, kind=RETRIABLE)
    drained()
    services.saga_compensate(saga_id=saga_id, reason=f"ticket 12: {SECRET}", actor="user:olga")
    drained()
    mine = token_client(shop).get(f"{API}/{saga_id}/").json()
    assert mine["failure"]["code"] == "OPERATOR"
    assert mine["failure"]["message"] == OPERATOR_MESSAGE
    assert SECRET not in str(mine)


def test_the_timeline_with_its_tracebacks_is_closed_to_clients(shop, drained):
    saga_id = start("overflow_timeline", "security.overflowing", shop)
    drained()
    assert token_client(shop).get(f"{API}/{saga_id}/events/").status_code == 403
