"""Concurrent refunds of one payment, sent to two app processes on PostgreSQL, never add up to more than it.

Each round makes a fresh invoice and pays it in full: by a check recorded through the
API (offline: refunded in the books only) or by card in the portal with the demo's
built-in test gateway (online: refunded at the gateway too). Then a burst of identical
retries of one refund request (one Idempotency-Key) refunds once, and a burst of
different refund requests whose sum is more than what is left refunds exactly what is
left: the payment row is locked, so the requests take turns and the rest are refused
with ``refund_exceeds_payment``. No answer may be a 5xx.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import httpx

from tests.scaleout.conftest import Fleet
from tests.scaleout.test_concurrency import TODAY, Api, Call
from tests.scaleout.test_payments_concurrency import fleet, pay_form

__all__ = ["fleet"]  # a fixture: two app processes on one PostgreSQL database and one Redis (api: conftest)

ROUNDS: Final = 8
BURST: Final = 8
PAID: Final = 10000
RETRIED: Final = 1000  # the refund retried with one Idempotency-Key
EACH: Final = 3000  # each of the burst's refunds: three fit in what is left (9000), eight do not
RUN: Final = uuid.uuid4().hex[:8]


def _paid_online(fleet: Fleet, api: Api, invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice paid by card in the portal (the demo company's test gateway); its payment."""
    portal = fleet.apps[0]
    cookie = portal.get(f"/login/{fleet.token()}").cookies["__Host-bp_session"]
    form = pay_form(portal.get("/pay", cookie=cookie).text, invoice["id"])
    headers = {"host": f"acme.localhost:{portal.port}", "cookie": f"__Host-bp_session={cookie}"}
    paid = httpx.post(f"http://127.0.0.1:{portal.port}/pay", data=form, headers=headers, timeout=30)
    assert paid.status_code == 303, paid.text
    [payment] = [
        p
        for p in api.list_all("payments", customer_id="1234")
        if any(a["invoice_id"] == invoice["id"] for a in p["applications"])
    ]
    return payment


def _paid_offline(api: Api, invoice: dict[str, Any], number: str) -> dict[str, Any]:
    body = {
        "customer_id": 1234,
        "number": number,
        "received_on": TODAY,
        "method": "check",
        "amount": PAID,
        "applications": [{"invoice_id": invoice["id"], "amount": PAID}],
    }
    return api.create("/payments", body)


def test_concurrent_refunds_never_refund_more_than_the_payment(fleet: Fleet, api: Api) -> None:
    problems: dict[int, list[str]] = {}
    mark = len(api.answers)
    for trial in range(ROUNDS):
        online = trial % 2 == 1
        invoice = api.create(
            "/invoices",
            {
                "customer_id": 1234,
                "number": f"REFUNDRACE-{RUN}-{trial}",
                "issued_on": TODAY,
                "lines": [{"description": "Rocket skates", "quantity": "1", "unit_price": PAID}],
            },
        )
        payment = _paid_online(fleet, api, invoice) if online else _paid_offline(api, invoice, f"RR-{RUN}-{trial}")
        path = f"/payments/{payment['id']}/refunds"
        wrong = []

        key = {"Idempotency-Key": f"refund-{RUN}-{trial}"}
        retried = api.burst([Call("POST", path, {"amount": RETRIED, "reason": "retried"}, key)] * BURST)
        if sorted(r.status_code for r in retried) != [201] * BURST or len({r.json()["id"] for r in retried}) != 1:
            wrong.append(f"retries answered {sorted(r.status_code for r in retried)}")

        calls = [Call("POST", path, {"amount": EACH, "reason": f"part {i}"}, {}) for i in range(BURST)]
        answers = api.burst(calls)
        made = [a for a in answers if a.status_code == 201]
        refused = [a for a in answers if a.status_code != 201]
        if len(made) != (PAID - RETRIED) // EACH:
            wrong.append(f"{len(made)} refunds of {EACH} made: {[a.status_code for a in answers]}")
        if any(a.status_code != 422 or a.json()["error"]["code"] != "refund_exceeds_payment" for a in refused):
            wrong.append(f"refused with {[(a.status_code, a.text[:120]) for a in refused]}")
        if online and not all(a.json()["gateway_refund_id"] for a in made):
            wrong.append("an online refund without the gateway's id")

        after = api.fetch(f"/payments/{payment['id']}")
        refunds = [r for r in after["refunds"] if r["status"] == "succeeded"]
        allowed = RETRIED + (PAID - RETRIED) // EACH * EACH
        if after["amount_refunded"] != allowed or sum(r["amount"] for r in refunds) != allowed:
            wrong.append(
                f"refunded {after['amount_refunded']} (refunds {[r['amount'] for r in refunds]}), not {allowed}"
            )
        if online and len({r["gateway_refund_id"] for r in refunds}) != len(refunds):
            wrong.append("two refunds with one gateway refund id")
        owed = api.fetch(f"/invoices/{invoice['id']}")
        if (owed["status"], owed["balance"], owed["amount_paid"]) != ("open", allowed, PAID - allowed):
            wrong.append(f"invoice {owed['status']}, balance {owed['balance']}, paid {owed['amount_paid']}")
        if wrong:
            problems[trial] = wrong
    assert not problems, f"{len(problems)} of {ROUNDS} rounds went wrong: {problems}"
    assert api.server_errors_since(mark) == []
