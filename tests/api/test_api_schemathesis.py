"""schemathesis against the live schema, in process: every check on, a bounded run per operation.

No response may be a 500, and every response must be one the schema documents (status, headers,
content type and body). Authenticated as an operator's token, so requests reach the handlers;
half the path parameters name rows that exist: a customer, an order, a stuck and a completed
saga, and the definitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from factories import CustomerFactory, OrderFactory, UserFactory
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig
from testkit import with_pivot

from bpm import services
from bpm.api.models import IdempotencyRecord

# Committed rows: the in-process workers that make the stuck saga need real transactions.
# Generated requests for half a minute: once, on the PostgreSQL pass (pyproject.toml's `slow`).
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis's lazy loader renames the test node per operation through `_nodeid`, which
    # pytest 9's nodes no longer have: give it one to read and restore.
    request.node._nodeid = request.node.nodeid


@pytest.fixture
def wsgi_app() -> Iterator[object]:
    """Return the site's WSGI application, its requests sharing the test's connection.

    Like Django's test client, it stops each request from closing the connection, which the
    test itself goes on using.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token() -> str:
    operator = UserFactory(username="olga", groups=["operators", "clients"])
    return Token.objects.create(user=operator).key


@pytest.fixture
def known(the_world, drained) -> dict[str, list]:
    """Make rows for the generated requests to find, and return their ids by kind."""
    customer = CustomerFactory(credit_limit=Decimal("100.00"))
    order = OrderFactory(customer_id=customer.pk)
    with_pivot()
    the_world.will("after", "fault", "fault", "fault")
    stuck = services.saga_start(definition="with_pivot", input={"n": 1}, actor="test")
    done = services.saga_start(definition="with_pivot", input={"n": 2}, actor="test")
    drained()
    return {
        "ids": [customer.pk, order.pk],
        "sagas": [str(stuck.id), str(done.id)],
        "definitions": ["place_order", "with_pivot"],
    }


@pytest.fixture
def unthrottled(settings) -> None:
    # Throttling has its own tests; here thousands of requests come from one client in seconds.
    settings.BPM_API_ANON_PER_MINUTE = 0
    settings.BPM_API_USER_PER_MINUTE = 0


@pytest.fixture
def api_schema(wsgi_app, token, known, unthrottled):
    # Path parameters take a known id half the time, so requests reach existing rows too.
    config = SchemathesisConfig.from_dict(
        {
            "checks": {"enabled": True},  # every built-in check
            "dictionaries": {kind: {"values": values} for kind, values in known.items()},
            "parameters": {
                "path.customer_id": {"dictionary": "ids", "probability": 0.5},
                "path.order_id": {"dictionary": "ids", "probability": 0.5},
                "path.saga_id": {"dictionary": "sagas", "probability": 0.5},
                "path.name": {"dictionary": "definitions", "probability": 0.5},
            },
            "operations": [
                {
                    # The schema is static, so it cannot say which definitions exist nor what
                    # each one's input schema accepts: a schema-valid start may name no
                    # definition, or an input its definition refuses, and both are a 400.
                    "include-name": "POST /api/v1/sagas/",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]
                        }
                    },
                },
                {
                    # A batch's arguments depend on its action (a patch only for retry, an
                    # output only for skip, a target version only for migrate) and its filter
                    # must match sagas that exist: rules across fields and rows that a static
                    # schema cannot state, so a schema-valid body may be a 400.
                    "include-name": "POST /api/v1/batches/",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]
                        }
                    },
                },
                {
                    # A customer's name must draw something: names of only control, format or
                    # zero-width characters are a 400. That rule is about Unicode categories,
                    # which a JSON Schema pattern cannot state, so the schema says it in words.
                    "include-name": "POST /api/v1/customers/",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "400", "401", "403", "409", "429"]
                        }
                    },
                },
                *(
                    {
                        # Which operators, steps and texts are accepted depends on the rows
                        # (an assignee must be an operator, a step must be the definition's) or
                        # on rules no JSON Schema states (no control characters): a 400 then.
                        "include-name": name,
                        "checks": {
                            "positive_data_acceptance": {
                                "expected-statuses": ["2xx", "400", "401", "403", "404", "409"]
                            }
                        },
                    }
                    for name in (
                        "POST /api/v1/sagas/{saga_id}/assign/",
                        "POST /api/v1/sagas/{saga_id}/rerun/",
                        "POST /api/v1/sagas/{saga_id}/comments/",
                        # A signal's name must be one a step of the saga's definition waits for.
                        "POST /api/v1/sagas/{saga_id}/signals/{name}/",
                    )
                ),
            ],
        }
    )
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@schema.parametrize()
def test_every_operation_answers_as_documented(case, token):
    # Each example stands alone, as separate clients would: no key carries over between them.
    IdempotencyRecord.objects.all().delete()
    case.call_and_validate(headers={"Authorization": f"Token {token}"})
