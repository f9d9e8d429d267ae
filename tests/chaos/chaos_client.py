"""An HTTP client that records every answer, and retries as a careful shop would.

A POST that gets a 5xx, a 409 (its key still in progress) or no answer at all is sent again with
the same Idempotency-Key until it gets a decision or its time runs out.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

RETRY_STATUSES = {409, 429, 500, 502, 503, 504}
REQUEST_TIMEOUT = 40.0


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and what came back (status 0: no answer, see `error`)."""

    method: str
    path: str
    key: str | None
    started: float
    finished: float
    status: int
    body: Any
    replayed: bool
    error: str = ""

    def overlaps(self, start: float, end: float) -> bool:
        return self.started <= end and self.finished >= start

    def describe(self, origin: float) -> str:
        what = str(self.status) if self.status else f"no answer ({self.error})"
        return (
            f"{self.method} {self.path} key={self.key} at +{self.started - origin:.2f}s"
            f"..+{self.finished - origin:.2f}s: {what} {' '.join(str(self.body).split())[:160]}"
        )


class Client:
    """Talks to the API with a token and keeps every exchange, thread-safely."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def request(self, method: str, path: str, body: Any = None, key: str | None = None) -> Exchange:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        started = time.monotonic()
        status, payload, replayed, error = 0, None, False, ""
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                status = response.status
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                payload = _decode(response.read())
        except urllib.error.HTTPError as exc:
            status = exc.code
            payload = _decode(exc.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        exchange = Exchange(
            method, path, key, started, time.monotonic(), status, payload, replayed, error
        )
        with self._lock:
            self.exchanges.append(exchange)
        return exchange

    def post_until_decided(self, path: str, body: Any, key: str, budget: float = 40.0) -> Exchange:
        """POST with `key` until the answer is neither a fault nor "in progress"; return it."""
        deadline = time.monotonic() + budget
        pause = 0.2
        while True:
            exchange = self.request("POST", path, body, key)
            if exchange.status and exchange.status not in RETRY_STATUSES:
                return exchange
            if time.monotonic() + pause > deadline:
                return exchange
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def get_json(self, path: str, attempts: int = 10) -> Any:
        """GET a JSON document, trying again after a fault; fail after `attempts`."""
        for _ in range(attempts):
            exchange = self.request("GET", path)
            if exchange.status == 200:
                return exchange.body
            time.sleep(0.5)
        raise AssertionError(f"GET {path} kept failing: {exchange.describe(exchange.started)}")


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:500].decode(errors="replace")
