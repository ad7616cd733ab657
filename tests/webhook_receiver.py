"""A real HTTP receiver of webhooks, in a thread: it verifies each signature with the ``standardwebhooks`` library.

Each request takes the next scripted answer (200 when the script is empty): a status, a
``("sleep", seconds)`` before answering 200, or a ``("redirect", path)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    webhook_id: str
    body: dict[str, Any]
    verified_by: list[int]  # which of the receiver's secrets verified it
    signature: str
    headers: dict[str, str] = field(default_factory=dict)
    raw: str = ""


@dataclass
class Receiver:
    url: str
    secrets: list[str] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    delay: float = 0.0  # seconds before each answer: widens the window in which a second send could happen
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(r.webhook_id for r in self.received)

    def types(self) -> list[str]:
        with self.lock:
            return [r.body["type"] for r in self.received]

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        """Until ``count`` requests arrived (a bound, not a timing: the test fails if they never do)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return
            time.sleep(0.02)
        raise AssertionError(f"{len(self.received)} webhooks arrived, {count} expected")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            headers = dict(self.headers.items())
            verified = []
            for index, secret in enumerate(receiver.secrets):
                try:
                    Webhook(secret).verify(raw, headers)
                    verified.append(index)
                except WebhookVerificationError:
                    pass
            with receiver.lock:
                receiver.received.append(
                    Received(
                        self.path,
                        headers.get("webhook-id", ""),
                        json.loads(raw),
                        verified,
                        headers.get("webhook-signature", ""),
                        {name.lower(): value for name, value in headers.items()},
                        raw,
                    )
                )
                action = receiver.script.pop(0) if receiver.script else 200
            if receiver.delay:
                time.sleep(receiver.delay)
            if isinstance(action, tuple) and action[0] == "sleep":
                time.sleep(action[1])
                action = 200
            if isinstance(action, tuple) and action[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", action[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            answer = json.dumps({"received": headers.get("webhook-id", "")}).encode()
            self.send_response(int(action))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # several deliverers connect at once: the default backlog (5) would refuse some
    daemon_threads = True


@contextmanager
def receiving(*secrets: str, port: int = 0) -> Iterator[Receiver]:
    """A receiver on a loopback port (a free one by default), verifying with ``secrets`` (or ``receiver.secrets``)."""
    server = _Server(("127.0.0.1", port), _handler(Receiver("")))
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks", list(secrets))
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
