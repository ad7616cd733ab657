"""One pay form, submitted many times at once to two app processes on PostgreSQL, pays once.

The demo company takes the built-in test gateway. Each trial makes a fresh invoice
through the API, opens the portal's pay page once (one one-time attempt token),
then releases a burst of identical submissions of that form, spread over two
``billportal serve`` processes sharing one database and one Redis. Every answer
must lead to the same result page, none may be 5xx, and the API must then show
exactly one payment for the invoice, which is paid exactly in full.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import httpx
import pytest

from billportal.services.payments import AutoPay
from tests.conftest import World, new_postgres_database, run
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet
from tests.scaleout.test_concurrency import TODAY, Api
from tests.server_process import App

TRIALS: Final = 20
BURST: Final = 8
TIMEOUT: Final = 30.0
RUN: Final = uuid.uuid4().hex[:8]
AMOUNT: Final = 10000


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    fleet = start_fleet(tmp_path_factory.mktemp("payments"), new_postgres_database(postgres.url), redis_server.url, 2)
    yield fleet
    for app in fleet.apps:
        app.stop()


def _submit_burst(fleet: Fleet, cookie: str, form: dict[str, str]) -> list[httpx.Response]:
    """The same form posted BURST times at one moment, alternating the two processes."""
    barrier = threading.Barrier(BURST)
    no_reuse = httpx.Limits(max_keepalive_connections=0)

    def send(slot: int) -> httpx.Response:
        port = fleet.apps[slot % 2].port
        with httpx.Client(timeout=TIMEOUT, limits=no_reuse) as client:
            barrier.wait(timeout=TIMEOUT)
            return client.post(
                f"http://127.0.0.1:{port}/pay",
                data=form,
                headers={"host": f"acme.localhost:{port}", "cookie": f"__Host-bp_session={cookie}"},
            )

    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(send, range(BURST)))


TEST_CARD: Final = {"card_number": "4242424242424242", "card_expiry": "12/30", "card_cvc": "123"}


def new_invoice_and_pay_form(
    api: Api, app: App, cookie: str, number: str, card: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A fresh invoice of $100.00 for customer 1234, and the pay form (one attempt token) that pays it with ``card``."""
    invoice = api.create(
        "/invoices",
        {
            "customer_id": 1234,
            "number": number,
            "issued_on": TODAY,
            "lines": [{"description": "Rocket skates", "quantity": "1", "unit_price": AMOUNT}],
        },
    )
    return invoice, pay_form(app.get("/pay", cookie=cookie).text, invoice["id"], card)


def pay_form(page: str, invoice_id: int, card: dict[str, str] | None = None) -> dict[str, str]:
    """The pay page's form filled in to pay one invoice (the test card unless ``card``); its token is the page's."""
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    token = re.search(r'name="attempt" value="([^"]+)"', page)
    assert csrf is not None
    assert token is not None
    chosen = {"what": "invoices", f"invoice_{invoice_id}": "1", "method": "new"}
    return {"csrf_token": csrf[1], "attempt": token[1], **chosen, **(card or TEST_CARD)}


def payments_of_paid_invoice(api: Api, invoice: dict[str, Any], wrong: list[str]) -> list[dict[str, Any]]:
    """The payments applied to ``invoice``; what is wrong with it (not paid exactly in full) goes in ``wrong``."""
    after = api.fetch(f"/invoices/{invoice['id']}")
    if (after["status"], after["amount_paid"], after["balance"]) != ("paid", AMOUNT, 0):
        wrong.append(f"invoice {after['status']}, paid {after['amount_paid']}, balance {after['balance']}")
    return [
        p
        for p in api.list_all("payments", customer_id="1234")
        if any(a["invoice_id"] == invoice["id"] for a in p["applications"])
    ]


def test_concurrent_submissions_of_one_pay_form_pay_once(fleet: Fleet, api: Api) -> None:
    first = fleet.apps[0]
    cookie = first.get(f"/login/{fleet.token()}").cookies["__Host-bp_session"]
    problems: dict[int, list[str]] = {}
    last = ""
    for trial in range(TRIALS):
        card = {"card_number": "4242424242424242", "card_expiry": "12/30", "card_cvc": "123"}
        invoice, form = new_invoice_and_pay_form(api, first, cookie, f"PAYRACE-{RUN}-{trial}", card)
        token = form["attempt"]
        answers = _submit_burst(fleet, cookie, form)
        wrong = []
        statuses = sorted(a.status_code for a in answers)
        if statuses != [303] * BURST:
            wrong.append(f"answers {statuses}: {next((a.text[:200] for a in answers if a.status_code != 303), '')}")
        if {a.headers.get("location") for a in answers} != {f"/pay/{token}"}:
            wrong.append("not every answer leads to the attempt's result")
        paying = payments_of_paid_invoice(api, invoice, wrong)
        if len(paying) != 1 or paying[0]["method_detail"] != "Visa ending 4242" or not paying[0]["gateway_payment_id"]:
            wrong.append(f"{len(paying)} payments of the invoice")
        if wrong:
            problems[trial] = wrong
        last = token
    assert not problems, f"{len(problems)} of {TRIALS} trials went wrong: {problems}"
    result = first.get(f"/pay/{last}", cookie=cookie)
    assert result.status_code == 200
    assert "Thank you: your payment was received" in result.text


def test_one_process_runs_autopay_at_a_time_on_postgresql(world: World) -> None:
    """An advisory lock of PostgreSQL (this file runs in make test's scale-out pass only)."""

    async def while_another_runs() -> tuple[bool, bool]:
        async with world.store.alone("autopay") as first:
            second = await AutoPay(world.store).run(now=world.clock.now)
            return first, second.ran

    assert run(while_another_runs()) == (True, False)
    assert run(AutoPay(world.store).run(now=world.clock.now)).ran  # the lock is let go after a run
