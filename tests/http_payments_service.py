"""A small payments service over real HTTP, for HTTP steps to call: the outside world.

It charges and refunds under the caller's Idempotency-Key, keeping each key's answer, so a repeat
gets the stored answer and charges nothing more. A script makes it misbehave on the next calls:
apply the charge and drop the connection before answering, answer 429 or 503 (with Retry-After),
redirect elsewhere. Run in a thread of the test (`PaymentsService.start()`) or as a process of its
own (`python http_payments_service.py <port>`), for workers in other processes.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "Bearer s3cret-payments-token"


class PaymentsService:
    """The service's data and script; `url` once started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunded: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.script: list[str] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def will(self, *behaviours: str) -> None:
        """Script the next calls: ok, drop_after_effect, 429:<retry-after>, 503, redirect:<url>."""
        with self.lock:
            self.script.extend(behaviours)

    def next_behaviour(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"

    def charge(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Charge once per key; the stored answer for a key seen before."""
        with self.lock:
            if key in self.answers:
                return self.answers[key]
            if body.get("customer") == "blocked":
                declined = {"code": "CARD_DECLINED", "message": "the card was declined"}
                answer = 402, {"error": declined}
            else:
                payment = {"payment_id": len(self.charges) + 1, "amount": body.get("amount")}
                self.charges[key] = payment
                answer = 201, payment
            self.answers[key] = answer
            return answer

    def refund(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if key in self.answers:
                return self.answers[key]
            target = str(body.get("payment_key", ""))
            found = target in self.charges and target not in self.refunded
            self.refunded.add(target)
            answer = 200, {"refunded": found}
            self.answers[key] = answer
            return answer

    def start(self, port: int = 0) -> PaymentsService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/big/"):
                    data = b"x" * int(self.path.removeprefix("/big/"))
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.reply(200, {"ok": True})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                key = self.headers.get("Idempotency-Key", "")
                with service.lock:
                    service.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                if self.headers.get("Authorization") != TOKEN:
                    return self.reply(401, {"code": "UNAUTHORIZED", "message": "bad token"})
                if not key:
                    return self.reply(400, {"code": "NO_KEY", "message": "Idempotency-Key?"})
                behaviour = service.next_behaviour()
                if behaviour.startswith("429:"):
                    return self.reply(429, {"message": "slow down"}, behaviour[4:])
                if behaviour == "503":
                    return self.reply(503, {"message": "unavailable"})
                if behaviour.startswith("redirect:"):
                    return self.reply(307, {}, location=behaviour[9:])
                if self.path.startswith("/payments"):
                    status, answer = service.charge(key, body)
                elif self.path.startswith("/refunds"):
                    status, answer = service.refund(key, body)
                else:
                    status, answer = 404, {"code": "NOT_FOUND", "message": self.path}
                if behaviour == "drop_after_effect":
                    # The effect is applied and stored; the answer never leaves.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                return self.reply(status, answer)

            def reply(
                self, status: int, body: dict[str, Any], retry_after: str = "", location: str = ""
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                if location:
                    self.send_header("Location", location)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def running() -> Iterator[PaymentsService]:
    service = PaymentsService().start()
    try:
        yield service
    finally:
        service.stop()


if __name__ == "__main__":
    PaymentsService().start(int(sys.argv[1]))
    threading.Event().wait()
