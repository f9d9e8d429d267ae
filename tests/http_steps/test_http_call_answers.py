"""How an HTTP step reads its answer, and how its templates are filled (pure functions)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from bpm import clock, http_calls, references
from bpm.context import StepContext
from bpm.errors import RetryLater, StepFailed


def answer(status: int, body: bytes = b"", content_type: str = "application/json", **headers):
    request = httpx.Request("POST", "https://payments.example/pay")
    return httpx.Response(
        status,
        content=body,
        headers={"Content-Type": content_type, **headers},
        request=request,
    )


def outcome(response):
    return http_calls.outcome_of("POST", "https://payments.example/pay", response)


@pytest.mark.parametrize(
    ("response", "output"),
    [
        (answer(201, b'{"id": 7}'), {"id": 7}),
        (answer(204), {}),
        (answer(200, b"[1, 2]"), {"value": [1, 2]}),
        (answer(200, b"OK", "text/plain"), {"text": "OK"}),
        (answer(200, b'{"a": 1}', "application/problem+json"), {"a": 1}),
    ],
)
def test_a_2xx_answer_is_the_output(response, output):
    assert outcome(response) == output


def test_a_2xx_declaring_json_that_is_not_json_is_a_fault():
    with pytest.raises(RuntimeError, match="not valid JSON"):
        outcome(answer(200, b"<html>"))


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b'{"code": "NO_CREDIT", "message": "over the limit"}', "NO_CREDIT", "over the limit"),
        (
            b'{"error": {"code": "DECLINED", "message": "card declined"}}',
            "DECLINED",
            "card declined",
        ),
        (b'{"title": "Bad amount", "detail": "amount < 0"}', "HTTP_422", "amount < 0"),
        (b"plain refusal", "HTTP_422", "plain refusal"),
    ],
)
def test_a_4xx_is_a_refusal_with_the_services_code_and_message(body, code, message):
    with pytest.raises(StepFailed) as refused:
        outcome(answer(422, body))
    assert (refused.value.code, refused.value.message) == (code, message)
    assert refused.value.data["status"] == 422


def test_a_refusal_code_is_cleaned_and_bounded():
    with pytest.raises(StepFailed) as refused:
        outcome(answer(400, b'{"code": "X\\n' + b"Y" * 200 + b'", "message": "m"}'))
    assert "\n" not in refused.value.code
    assert len(refused.value.code) <= 64


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_408_429_and_5xx_are_faults_to_retry(status):
    with pytest.raises(RetryLater):
        outcome(answer(status, b"{}"))


def test_retry_after_in_seconds_and_as_a_date():
    assert http_calls.retry_after(answer(429, **{"Retry-After": "7"})) == 7
    later = format_datetime(clock.now() + timedelta(seconds=90), usegmt=True)
    assert http_calls.retry_after(answer(429, **{"Retry-After": later})) == pytest.approx(90, abs=2)
    assert http_calls.retry_after(answer(429, **{"Retry-After": "soon"})) is None
    past = format_datetime(clock.now() - timedelta(hours=1), usegmt=True)
    assert http_calls.retry_after(answer(503, **{"Retry-After": past})) == 0


def test_a_redirect_is_a_refusal_naming_where_it_pointed():
    with pytest.raises(StepFailed, match=r"169\.254\.169\.254") as refused:
        outcome(answer(302, Location="http://169.254.169.254/"))
    assert refused.value.code == "HTTP_REDIRECT"


def context(**inputs) -> StepContext:
    return StepContext(
        saga_id=uuid.UUID(int=1),
        step="pay",
        direction="FORWARD",
        attempt=1,
        input=inputs,
        outputs={"reserve": {"ids": [4, 5], "ok": True}},
        idempotency_key="key-1",
        business_key="order-9",
    )


def test_references_keep_types_and_text_placeholders_become_text():
    scope = http_calls.scope_of(context(total=12.5, who="Zoë"))
    body = {
        "amount": {"$ref": "/input/total"},
        "ids": {"$ref": "/context/reserve/ids"},
        "note": "{input.who} pays {input.total}, ok={context.reserve.ok}, {{literal}}",
        "first": "{context.reserve.ids.0}",
        "saga": "{saga.business_key}",
    }
    assert references.fill(body, scope) == {
        "amount": 12.5,
        "ids": [4, 5],
        "note": "Zoë pays 12.5, ok=true, {literal}",
        "first": "4",
        "saga": "order-9",
    }


@pytest.mark.parametrize(
    "template",
    [{"$ref": "/input/missing"}, "{input.missing}", "{context.reserve.ids.9}", "{input.nothing}"],
)
def test_a_reference_to_nothing_is_an_error_not_an_empty_string(template):
    with pytest.raises(references.MissingReference, match="refers to nothing"):
        references.fill(template, http_calls.scope_of(context()))


def test_an_object_or_null_inside_text_is_an_error():
    scope = http_calls.scope_of(context(nothing=None))
    with pytest.raises(references.MissingReference, match="null"):
        references.fill("{input.nothing}", scope)
    with pytest.raises(references.MissingReference, match="list"):
        references.fill("{context.reserve.ids}", scope)


def test_url_values_are_percent_encoded():
    url = references.fill_text(
        "https://payments.example/o/{input.id}?q={input.id}",
        http_calls.scope_of(context(id="../a?b=1&c")),
        "url",
        encode=lambda text: http_calls.quote(text, safe=""),
    )
    assert url == "https://payments.example/o/..%2Fa%3Fb%3D1%26c?q=..%2Fa%3Fb%3D1%26c"
