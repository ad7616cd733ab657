"""Stripe's webhook, delivered many times at once to two app processes, racing the pay form's confirmation: one payment.

The demo company takes cards through Stripe, here localstripe run as a process, reached
through a small proxy (:class:`Holding`) that can hold back the answer to "create and confirm
this PaymentIntent": the way a webhook comes in before the confirmation's answer. Each round
makes a fresh invoice through the API and opens the portal's pay page once (one one-time
attempt token); the card becomes a PaymentMethod at localstripe, as Stripe's script does. Then:

- the pay form is submitted several times at once, to both ``billportal serve`` processes (the
  browser's confirmation path: one of them confirms a PaymentIntent at localstripe);
- once that PaymentIntent has succeeded at localstripe, the ``payment_intent.succeeded`` event
  Stripe sends about it (the same body and Stripe-Signature every time) is delivered many times
  at one moment, to both processes: in even rounds all of it before the confirmation's answer
  is let go, in odd rounds at the same moment as that answer;
- afterwards a ``payment_intent.payment_failed`` event about the same PaymentIntent arrives,
  many times at once (out of order: Stripe does not promise order).

Every round must end with exactly one payment of the invoice, carrying the PaymentIntent's id,
and the invoice paid in full; every request answered as it should, none 5xx.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import httpx
import pytest

from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet
from tests.scaleout.test_concurrency import Api
from tests.scaleout.test_payments_concurrency import AMOUNT, new_invoice_and_pay_form, payments_of_paid_invoice
from tests.stripe_support import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, card_payment_method, signed

ROUNDS: Final = 8
PAY_POSTS: Final = 4  # the same pay form, resent
DELIVERIES: Final = 8  # the same succeeded event, redelivered
LATE_FAILURES: Final = 4  # a failure event about the same PaymentIntent, after the success
TIMEOUT: Final = 30.0
RUN: Final = uuid.uuid4().hex[:8]
_FORWARDED: Final = ("authorization", "content-type", "idempotency-key", "stripe-version")


class Holding(ThreadingHTTPServer):
    """A proxy to localstripe that holds each new PaymentIntent's answer until :attr:`release` is set.

    The PaymentIntent (already confirmed at localstripe) is put on :attr:`made` meanwhile.
    """

    def __init__(self, localstripe: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.localstripe = localstripe
        self.made: queue.Queue[dict[str, Any]] = queue.Queue()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: Holding

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {name: self.headers[name] for name in _FORWARDED if self.headers.get(name)}
        answer = httpx.request(
            self.command, self.server.localstripe + self.path, content=body, headers=headers, timeout=TIMEOUT
        )
        if self.command == "POST" and self.path == "/v1/payment_intents" and answer.status_code == 200:
            self.server.made.put(answer.json())
            self.server.release.wait(timeout=TIMEOUT)
        self.send_response(answer.status_code)
        self.send_header("content-type", answer.headers.get("content-type", "application/json"))
        self.send_header("content-length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def holding(localstripe: str) -> Iterator[Holding]:
    proxy = Holding(localstripe)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.release.set()
    proxy.shutdown()
    proxy.server_close()


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis, holding: Holding
) -> Iterator[Fleet]:
    fleet = start_fleet(tmp_path_factory.mktemp("webhooks"), new_postgres_database(postgres.url), redis_server.url, 2)
    fleet.cli(
        "payments", "configure", "--tenant", "acme", "--gateway", "stripe", "--api-base", holding.url,
        "--publishable-key", PUBLISHABLE_KEY, "--secrets-stdin",
        stdin=f"{SECRET_KEY}\n{WEBHOOK_SECRET}\n",
    )  # fmt: skip
    yield fleet
    for app in fleet.apps:
        app.stop()


def _post(fleet: Fleet, slot: int, path: str, barrier: threading.Barrier, **sent: Any) -> httpx.Response:
    """One POST to process ``slot % 2``, sent when every request of its burst is ready."""
    port = fleet.apps[slot % 2].port
    headers = {"host": f"acme.localhost:{port}", **sent.pop("headers", {})}
    with httpx.Client(timeout=TIMEOUT, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        barrier.wait(timeout=TIMEOUT)
        return client.post(f"http://127.0.0.1:{port}{path}", headers=headers, **sent)


def _deliver(
    pool: ThreadPoolExecutor, fleet: Fleet, event: dict[str, Any], barrier: threading.Barrier
) -> list[Future[httpx.Response]]:
    """The same signed delivery (one body, one Stripe-Signature), at one moment, to both processes."""
    payload, signature = signed(event)
    headers = {"stripe-signature": signature, "content-type": "application/json"}
    return [
        pool.submit(_post, fleet, slot, "/webhooks/stripe", barrier, content=payload, headers=headers)
        for slot in range(DELIVERIES if event["type"] == "payment_intent.succeeded" else LATE_FAILURES)
    ]


def _event(event_id: str, kind: str, intent: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": kind, "created": int(time.time()), "data": {"object": intent}}


def _released(holding: Holding, barrier: threading.Barrier) -> None:
    barrier.wait(timeout=TIMEOUT)
    holding.release.set()


def test_redelivered_webhooks_racing_the_confirmation_record_one_payment(
    fleet: Fleet, api: Api, holding: Holding, localstripe: str
) -> None:
    first = fleet.apps[0]
    cookie = first.get(f"/login/{fleet.token()}").cookies["__Host-bp_session"]
    problems: dict[int, list[str]] = {}
    intents: list[str] = []
    recorded_by_webhook = 0
    for trial in range(ROUNDS):
        webhook_first = trial % 2 == 0
        method = {"payment_method": card_payment_method(localstripe, "4242424242424242")}
        invoice, form = new_invoice_and_pay_form(api, first, cookie, f"HOOKRACE-{RUN}-{trial}", method)
        token = form["attempt"]
        holding.release.clear()
        with ThreadPoolExecutor(PAY_POSTS + DELIVERIES + 1) as pool:
            start = threading.Barrier(PAY_POSTS)
            cookies = {"cookie": f"__Host-bp_session={cookie}"}
            posts = [pool.submit(_post, fleet, n, "/pay", start, data=form, headers=cookies) for n in range(PAY_POSTS)]
            intent = holding.made.get(timeout=TIMEOUT)  # confirmed at Stripe; the answer is held back
            succeeded = _event(f"evt_ok_{RUN}_{trial}", "payment_intent.succeeded", intent)
            if webhook_first:
                hooks = _deliver(pool, fleet, succeeded, threading.Barrier(DELIVERIES))
                delivered = [f.result() for f in hooks]
                holding.release.set()
            else:
                together = threading.Barrier(DELIVERIES + 1)
                hooks = _deliver(pool, fleet, succeeded, together)
                pool.submit(_released, holding, together)
                delivered = [f.result() for f in hooks]
            paid = [f.result() for f in posts]
        with ThreadPoolExecutor(LATE_FAILURES) as pool:
            late = _event(f"evt_failed_{RUN}_{trial}", "payment_intent.payment_failed", intent)
            failures = [f.result() for f in _deliver(pool, fleet, late, threading.Barrier(LATE_FAILURES))]

        wrong = []
        if intent["metadata"].get("billportal_attempt") != token or intent["status"] != "succeeded":
            wrong.append(f"the PaymentIntent made: {intent['status']}, {intent['metadata']}")
        if sorted(a.status_code for a in paid) != [303] * PAY_POSTS:
            wrong.append(f"pay answers {sorted(a.status_code for a in paid)}")
        if {a.headers.get("location") for a in paid} != {f"/pay/{token}"}:
            wrong.append("not every pay answer leads to the attempt's result")
        if sorted(a.status_code for a in delivered + failures) != [200] * (DELIVERIES + LATE_FAILURES):
            wrong.append(f"webhook answers {sorted(a.status_code for a in delivered + failures)}")
        paying = payments_of_paid_invoice(api, invoice, wrong)
        if [(p["amount"], p["gateway_payment_id"]) for p in paying] != [(AMOUNT, intent["id"])]:
            wrong.append(f"payments of the invoice: {[(p['amount'], p['gateway_payment_id']) for p in paying]}")
        # The confirmation records the card it charged; a webhook that came first records the payment without it.
        by_webhook = [p["method_detail"] for p in paying] == [""]
        recorded_by_webhook += by_webhook
        if webhook_first and not by_webhook:
            wrong.append("held back, the confirmation still recorded the payment before the webhook")
        result = first.get(f"/pay/{token}", cookie=cookie)
        if "Thank you: your payment was received" not in result.text:
            wrong.append("the attempt's page does not say it was paid")
        if wrong:
            problems[trial] = wrong
        intents.append(intent["id"])
    assert not problems, f"{len(problems)} of {ROUNDS} rounds went wrong: {problems}"
    assert recorded_by_webhook >= ROUNDS // 2
    online = [p for p in api.list_all("payments", customer_id="1234") if p["gateway_payment_id"] in intents]
    assert len(online) == ROUNDS
