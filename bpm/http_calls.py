"""Steps whose action or compensation is an HTTP call to another service.

A call is `{"method", "url", "body", "headers"}`: the URL and body are templates filled from the
saga (bpm/references.py), a header may name a secret from BPM_HTTP_SECRETS, and every call sends
`Idempotency-Key: <the run's idempotency key>` so the service applies a retried call once. The
answer becomes the step's outcome:

- 2xx: the JSON object in the body is the output (`{}` for an empty body, `{"value": …}` for
  JSON that is not an object, `{"text": …}` for a body that is not JSON);
- 3xx: a refusal (redirects are never followed);
- 408, 429 and 5xx: a fault, retried by the step's policy, no sooner than Retry-After;
- any other 4xx: a refusal whose code and message come from the body.

Timeouts and connection errors are faults; a URL the outbound policy refuses is a refusal on the
first attempt (nothing was sent) and a fault after it (an earlier attempt's effect is unknown).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from bpm import clock, outbound, references, registry
from bpm.context import StepContext
from bpm.errors import RetryLater, StepFailed

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
KEYS = {"method", "url", "body", "headers"}
LABEL_LENGTH = 200
MAX_URL_LENGTH = 2048
MAX_BODY_BYTES = 64 * 1024
MAX_HEADERS = 32
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
# Headers the client sets itself, or that would let a definition steer the connection.
RESERVED_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    IDEMPOTENCY_HEADER.lower(),
}
# Header names whose value is a credential: only ever a {"secret": …} reference.
SENSITIVE_NAME = re.compile(
    r"authorization|auth|token|secret|key|password|passwd|cookie|session|signature|credential",
    re.IGNORECASE,
)
# Values that look like a credential written into the definition.
CREDENTIAL_VALUE = re.compile(
    r"^\s*(bearer|basic|digest|token|apikey|api-key)\s+\S"
    r"|(?=[A-Za-z0-9+/=_.~-]*[0-9])(?=[A-Za-z0-9+/=_.~-]*[A-Za-z])[A-Za-z0-9+/=_.~-]{32,}",
    re.IGNORECASE,
)
SECRET_KEYS = {"secret", "prefix"}
# How much of a service's answer an event keeps.
SHOWN_BODY = 500
KEPT_TEXT = 4096


# --- the definition's side: shape, validation, label -----------------------------------------


def step_action(value: Any) -> tuple[str, dict[str, Any] | None]:
    """Return (name or label, HTTP call or None) for an action given as a name or {"http": …}.

    The value must already be valid (see action_problems).
    """
    if isinstance(value, Mapping):
        call = normalized(value["http"])
        return label(call), call
    return str(value or ""), None


def as_action(name: str, call: dict[str, Any] | None) -> str | dict[str, Any]:
    """Return an action as the API and the composer write it: a name or {"http": call}."""
    return {"http": call} if call is not None else name


def action_problems(value: Any) -> list[str]:
    """Return what is wrong with an action given as {"http": …} (a name is checked elsewhere)."""
    if not isinstance(value, Mapping):
        return ['must be a handler name or {"http": {…}}']
    if set(value) != {"http"}:
        unknown = ", ".join(sorted(set(value) - {"http"})) or "nothing"
        return [f'an HTTP action is {{"http": {{…}}}} and nothing else (found {unknown})']
    return call_problems(value["http"])


def call_problems(call: Any) -> list[str]:
    """Return what is wrong with an HTTP call's definition (empty when it may be saved)."""
    if not isinstance(call, Mapping):
        return ["http must be an object with method and url"]
    known = ", ".join(sorted(KEYS))
    problems = [f"unknown key {key!r} (known: {known})" for key in call if key not in KEYS]
    method = call.get("method")
    if method not in METHODS:
        problems.append(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    problems.extend(_url_problems(call.get("url")))
    if "body" in call:
        problems.extend(_body_problems(call["body"], method))
    problems.extend(_headers_problems(call.get("headers", {})))
    return problems


def normalized(call: Mapping[str, Any]) -> dict[str, Any]:
    """Return a valid call in the one form it is stored in."""
    shaped: dict[str, Any] = {"method": call["method"], "url": call["url"]}
    if call.get("body") is not None:
        shaped["body"] = call["body"]
    if call.get("headers"):
        shaped["headers"] = dict(call["headers"])
    return shaped


def label(call: Mapping[str, Any]) -> str:
    """Return how a call is named where a handler's name would be: "http POST <url>"."""
    text = f"http {call['method']} {call['url']}"
    return text if len(text) <= LABEL_LENGTH else text[: LABEL_LENGTH - 1] + "…"


def _url_problems(url: Any) -> list[str]:
    if not isinstance(url, str) or not url:
        return ["url must be a string such as https://payments.example.com/payments"]
    if len(url) > MAX_URL_LENGTH:
        return [f"url is longer than {MAX_URL_LENGTH} characters"]
    problems = references.text_problems(url, "url")
    start = re.match(r"(?i)(https?)://([^/?#]*)", url)
    if start is None:
        return [*problems, "url must start with http:// or https:// and a host"]
    if "{" in start.group(2) or "}" in start.group(2):
        return [*problems, "url: the host and port are written out, never filled from the saga"]
    # Every placeholder as a plain segment: what is left is the URL the policy judges.
    sample = references.PLACEHOLDER.sub(lambda m: "x" if m.group(1) else m.group(0)[0], url)
    try:
        outbound.check_url(sample)
    except outbound.UrlRefused as exc:
        problems.append(f"url: {exc}")
    return problems


def _body_problems(body: Any, method: Any) -> list[str]:
    if method == "GET" and body is not None:
        return ["a GET sends no body"]
    try:
        size = len(json.dumps(body, ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError):
        return ["body must be JSON (finite numbers)"]
    if size > MAX_BODY_BYTES:
        return [f"body is larger than {MAX_BODY_BYTES} bytes"]
    return references.template_problems(body, "body")


def _headers_problems(headers: Any) -> list[str]:
    if not isinstance(headers, Mapping):
        return ["headers must be an object of header names to values"]
    if len(headers) > MAX_HEADERS:
        return [f"at most {MAX_HEADERS} headers"]
    problems = []
    for name, value in headers.items():
        where = f"headers.{name}"
        if not isinstance(name, str) or not TOKEN.fullmatch(name):
            problems.append(f"{where}: not a header name")
        elif name.lower() in RESERVED_HEADERS:
            problems.append(f"{where}: set by the client itself, not by a definition")
        elif isinstance(value, Mapping):
            problems.extend(_secret_problems(value, where))
        elif not isinstance(value, str) or re.search(r"[\x00-\x1f\x7f]", value):
            problems.append(f"{where}: must be text without control characters, or a secret")
        elif SENSITIVE_NAME.search(name):
            problems.append(
                f'{where}: a credential is never written in a definition: use {{"secret": "NAME"}}'
                " with NAME listed in BPM_HTTP_SECRETS"
            )
        elif CREDENTIAL_VALUE.search(value):
            problems.append(
                f"{where}: the value looks like a credential, which is never written in a"
                ' definition: use {"secret": "NAME"}'
            )
        else:
            problems.extend(references.text_problems(value, where))
    return problems


def _secret_problems(value: Mapping[str, Any], where: str) -> list[str]:
    if set(value) - SECRET_KEYS or "secret" not in value:
        return [f'{where}: a secret is {{"secret": "NAME"}}, optionally with "prefix"']
    name, prefix = value["secret"], value.get("prefix", "")
    problems = []
    if not isinstance(prefix, str) or len(prefix) > 50 or re.search(r"[\x00-\x1f\x7f]", prefix):
        problems.append(f'{where}: prefix must be short text such as "Bearer "')
    if name not in settings.BPM_HTTP_SECRETS:
        known = ", ".join(sorted(settings.BPM_HTTP_SECRETS)) or "none"
        problems.append(f"{where}: no secret {name!r} in BPM_HTTP_SECRETS (known: {known})")
    return problems


# --- the worker's side: making the call and reading the answer --------------------------------


def handler_for(call: dict[str, Any], *, name: str, timeout: float) -> registry.Handler:
    """Return the handler that runs this call for a step: at-least-once, never transactional."""
    return registry.Handler(
        name=name, func=partial(perform, call, timeout=timeout), transactional=False
    )


def perform(call: dict[str, Any], ctx: StepContext, *, timeout: float) -> dict[str, Any]:
    """Make the call for this run and return its output; raise StepFailed or a fault."""
    method = call["method"]
    try:
        url, content, headers = _request_of(call, ctx)
    except references.MissingReference as exc:
        raise StepFailed("HTTP_REFERENCE_MISSING", str(exc)) from None
    try:
        response = outbound.request(method, url, content=content, headers=headers, timeout=timeout)
    except outbound.UrlRefused as exc:
        if ctx.attempt <= 1:
            raise StepFailed("URL_REFUSED", str(exc)) from None
        raise
    return outcome_of(method, url, response)


def scope_of(ctx: StepContext) -> dict[str, Any]:
    """Return what a call's references may name."""
    saga = {
        "id": str(ctx.saga_id),
        "business_key": ctx.business_key,
        "action_idempotency_key": ctx.action_idempotency_key,
    }
    return {"input": ctx.input, "context": ctx.outputs, "saga": saga}


def _request_of(call: dict[str, Any], ctx: StepContext) -> tuple[str, bytes | None, dict[str, str]]:
    scope = scope_of(ctx)
    url = references.fill_text(call["url"], scope, "url", encode=partial(quote, safe=""))
    content = None
    headers = {"Accept": "application/json"}
    if "body" in call:
        body = references.fill(call["body"], scope)
        content = json.dumps(body, ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json"
    for name, value in call.get("headers", {}).items():
        headers[name] = _header_value(name, value, scope)
    headers[IDEMPOTENCY_HEADER] = ctx.idempotency_key
    return url, content, headers


def _header_value(name: str, value: Any, scope: dict[str, Any]) -> str:
    if isinstance(value, Mapping):
        secret = settings.BPM_HTTP_SECRETS.get(value["secret"])
        if secret is None:
            # A fault, not a refusal: the setting can be fixed and the step retried.
            raise RuntimeError(f"header {name}: no secret {value['secret']!r} in BPM_HTTP_SECRETS")
        return str(value.get("prefix", "")) + secret
    text = references.fill_text(value, scope, f"headers.{name}")
    if re.search(r"[\x00-\x1f\x7f]", text) or not text.isascii():
        raise StepFailed(
            "HTTP_HEADER_INVALID",
            f"header {name}: the filled value holds a control or non-ASCII character",
        )
    return text


def outcome_of(method: str, url: str, response: httpx.Response) -> dict[str, Any]:
    """Return the output of a 2xx answer; raise StepFailed or a fault for the others."""
    status = response.status_code
    where = f"{method} {url} answered {status}"
    if 200 <= status < 300:
        return _output(response, where)
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        raise StepFailed(
            "HTTP_REDIRECT",
            f"{where} redirecting to {location[:300]!r}: redirects are not followed;"
            " call the final URL (its host must be in BPM_HTTP_ALLOWED_HOSTS)",
            {"status": status},
        )
    if status in (408, 429) or status >= 500:
        raise RetryLater(f"{where}: {_shown_body(response)}", retry_after(response))
    if 400 <= status < 500:
        code, message, data = _refusal(response)
        raise StepFailed(code, message or where, {"status": status, **data})
    raise RuntimeError(f"{where}: not an answer this client understands")


def _output(response: httpx.Response, where: str) -> dict[str, Any]:
    if not response.content:
        return {}
    if not _is_json(response):
        return {"text": response.content[:KEPT_TEXT].decode("utf-8", "replace")}
    try:
        value = json.loads(response.content)
    except ValueError:
        raise RuntimeError(f"{where} with a body that is not valid JSON") from None
    return value if isinstance(value, dict) else {"value": value}


def _refusal(response: httpx.Response) -> tuple[str, str, dict[str, Any]]:
    """Return the code, message and body of a refusal, as the service wrote them."""
    fallback = f"HTTP_{response.status_code}"
    body: Any = None
    if _is_json(response):
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return fallback, _shown_body(response), {}
    nested = body.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else body
    code = error.get("code") or (body.get("error") if isinstance(body.get("error"), str) else "")
    message = error.get("message") or error.get("detail") or error.get("title") or ""
    code = _clean(code, 64) if isinstance(code, str | int) else ""
    message = _clean(message, 1000) if isinstance(message, str) else ""
    kept = {"body": body} if len(response.content) <= SHOWN_BODY * 4 else {}
    return code or fallback, message, kept


def retry_after(response: httpx.Response) -> float | None:
    """Return the seconds a Retry-After header asks for (seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - clock.now()).total_seconds())


def _is_json(response: httpx.Response) -> bool:
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _shown_body(response: httpx.Response) -> str:
    text = response.content[:SHOWN_BODY].decode("utf-8", "replace")
    return _clean(text, SHOWN_BODY) or response.reason_phrase


def _clean(value: Any, length: int) -> str:
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(value)).strip()
    return text if len(text) <= length else text[: length - 1] + "…"
