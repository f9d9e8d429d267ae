"""HTTP steps on real rqworker processes against a real local payments service."""

from __future__ import annotations

import pytest
from http_payments_service import TOKEN, running

from bpm import definitions, http_calls, services
from bpm.declarations import PIVOT, RetryPolicy, SagaDeclaration, StepDeclaration
from bpm.models import SagaInstance, SagaStatus, StepRun

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.5, multiplier=1, max_backoff=5, jitter=0)
SECRET_ENV = {
    "BPM_HTTP_ALLOWED_HOSTS": "127.0.0.1",
    "BPM_HTTP_SECRETS": "PAYMENTS_TOKEN",
    "BPM_HTTP_SECRET_PAYMENTS_TOKEN": TOKEN.removeprefix("Bearer "),
}


def call(url: str, path: str, body: dict) -> dict:
    headers = {"Authorization": {"secret": "PAYMENTS_TOKEN", "prefix": "Bearer "}}
    return {"method": "POST", "url": url + path, "body": body, "headers": headers}


def step(name: str, action: dict, compensation: dict | None = None, **options) -> StepDeclaration:
    label, action_http = http_calls.step_action({"http": action})
    undo, undo_http = http_calls.step_action({"http": compensation}) if compensation else ("", None)
    return StepDeclaration(
        name,
        label,
        undo,
        action_http=action_http,
        compensation_http=undo_http,
        retry=RETRY,
        **options,
    )


def status_of(saga) -> str:
    return SagaInstance.objects.values_list("status", flat=True).get(pk=saga.pk)


def test_http_steps_survive_a_dropped_reply_and_compensate_a_refusal_on_real_workers(
    processes, wait_for, settings
):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.BPM_HTTP_SECRETS = {"PAYMENTS_TOKEN": "s3cret-payments-token"}
    with running() as service:
        charge = call(
            service.url,
            "/payments",
            {"customer": {"$ref": "/input/customer"}, "amount": {"$ref": "/input/amount"}},
        )
        refund = call(service.url, "/refunds", {"payment_key": "{saga.action_idempotency_key}"})
        fee = call(
            service.url, "/payments", {"customer": {"$ref": "/input/fee_customer"}, "amount": 1}
        )
        definitions.sync_declaration(
            SagaDeclaration(
                name="http_e2e",
                title="HTTP payments on real workers",
                steps=(step("charge", charge, refund), step("fee", fee, kind=PIVOT)),
            )
        )
        service.will("drop_after_effect")  # the first call: charged, then the connection drops
        processes.worker("http-worker-1", **SECRET_ENV)
        processes.worker("http-worker-2", **SECRET_ENV)
        paid = services.saga_start(
            definition="http_e2e",
            input={"customer": "alice", "fee_customer": "bob", "amount": 30},
            actor="test",
        )
        wait_for(lambda: status_of(paid) == SagaStatus.COMPLETED, message="the paid saga")
        refused = services.saga_start(
            definition="http_e2e",
            input={"customer": "carol", "fee_customer": "blocked", "amount": 40},
            actor="test",
        )
        wait_for(lambda: status_of(refused) == SagaStatus.COMPENSATED, message="the refusal")

    paid_charge = StepRun.objects.get(saga=paid, step__name="charge", direction="FORWARD")
    assert paid_charge.attempts == 2
    assert paid_charge.output == {"payment_id": 1, "amount": 30}
    charged_keys = list(service.charges)
    assert charged_keys.count(paid_charge.idempotency_key) == 1
    carol_key = StepRun.objects.get(
        saga=refused, step__name="charge", direction="FORWARD"
    ).idempotency_key
    assert service.refunded == {carol_key}
    # alice and bob once each, carol once (refunded); the blocked fee charged nothing
    assert len(service.charges) == 3
