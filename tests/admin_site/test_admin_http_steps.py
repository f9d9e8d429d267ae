"""The admin's composer takes an HTTP call instead of a handler, checked as the API checks it."""

from __future__ import annotations

import json

import pytest
from test_admin_definitions import ADD, composed, problems, step

from bpm.models import SagaDefinition

pytestmark = pytest.mark.django_db

CALL = {
    "method": "POST",
    "url": "https://payments.example/payments/{input.order_id}",
    "body": {"amount": {"$ref": "/input/total"}},
    "headers": {"Authorization": {"secret": "PAY", "prefix": "Bearer "}},
}


@pytest.fixture(autouse=True)
def outbound(settings):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["payments.example"]
    settings.BPM_HTTP_SECRETS = {"PAY": "token"}


def test_a_step_may_call_a_service_instead_of_a_handler(designer):
    data = composed(
        "pay_over_http",
        step(1, "pay", action="", action_http=json.dumps(CALL), compensation="test.remote"),
    )
    response = designer.post(ADD, data)
    assert response.status_code == 302, problems(response)
    stored = SagaDefinition.objects.get(name="pay_over_http").steps.get()
    assert stored.action_http == CALL
    assert stored.action == "http POST https://payments.example/payments/{input.order_id}"
    assert stored.compensation == "test.remote"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({**CALL, "url": "https://elsewhere.example/x"}, "not listed"),
        ({**CALL, "headers": {"Authorization": "Bearer abc"}}, "credential"),
        ({**CALL, "body": {"$ref": "/inputs/x"}}, "must start with one of"),
        ("not an object", "http must be an object"),
    ],
)
def test_a_bad_http_call_is_refused_with_its_reason(designer, call, message):
    data = composed("pay_over_http", step(1, "pay", action="", action_http=json.dumps(call)))
    assert message in problems(designer.post(ADD, data))
    assert not SagaDefinition.objects.filter(name="pay_over_http").exists()


def test_a_handler_and_a_call_together_are_refused(designer):
    data = composed("pay_over_http", step(1, "pay", action_http=json.dumps(CALL)))
    assert "not both" in problems(designer.post(ADD, data))


def test_a_step_needs_a_handler_or_a_call(designer):
    data = composed("pay_over_http", step(1, "pay", action=""))
    assert "choose a handler or write an HTTP call" in problems(designer.post(ADD, data))
