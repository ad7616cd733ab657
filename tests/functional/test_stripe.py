"""Paying through Stripe, against localstripe (a fake Stripe server run as a separate process), over HTTP.

localstripe runs as a process (the ``localstripe`` fixture, tests/stripe_support.py). The
browser's part (Stripe's script turning a card into a PaymentMethod) is done here by the
test with the official `stripe` package; the form then posts only the PaymentMethod id,
as the real page does. tests/browser/test_stripe_browser.py drives the real page's
script, with localstripe's fake stripe.js, in chromium.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from sqlalchemy import select
from starlette.testclient import TestClient

from billportal.services.audit import CLI
from billportal.services.payments import AutoPay, Payments
from billportal.storage import payments as stored
from billportal.storage.documents import Scope
from billportal.storage.records import Invoice, Payment
from billportal.storage.schema import gateway_customers
from tests import factories
from tests.browser.conftest import free_port
from tests.conftest import World, run
from tests.functional.portal_world import csrf_token, signed_in, text_of
from tests.stripe_support import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    card_payment_method,
    localstripe_api,
    payment_intent_event,
    signed,
)

INVOICE = 35890


@pytest.fixture
def client(world: World, localstripe: str) -> TestClient:
    settings = {"gateway": "stripe", "publishable_key": PUBLISHABLE_KEY, "api_base": localstripe}
    run(
        Payments(world.store).configure(
            world.acme,
            settings,
            CLI,
            now=world.clock.now,
            secret_key=SECRET_KEY,
            webhook_secret=WEBHOOK_SECRET,
        )
    )
    return signed_in(world)


def _invoices(world: World) -> dict[str, Invoice]:
    rows, _ = run(world.billing.invoices(Scope(world.acme.id, 1234)))
    return {invoice.number: invoice for invoice in rows}


def _payments(world: World) -> list[Payment]:
    rows, _ = run(world.billing.documents("payment", Scope(world.acme.id, 1234)))
    return rows


def _pay_form(client: TestClient, **fields: str) -> dict[str, str]:
    page = client.get("/pay").text
    form = {
        "csrf_token": csrf_token(page),
        "attempt": page.split('name="attempt" value="', 1)[1].split('"', 1)[0],
        "what": "balance",
        "method": "new",
    }
    return form | fields


def _pay(client: TestClient, form: dict[str, str]) -> str:
    response = client.post("/pay", data=form)
    assert response.status_code == 303, response.text
    return text_of(client.get(response.headers["location"]).text)


def _deliver(client: TestClient, event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> int:
    payload, signature = signed(event, secret)
    headers = {"stripe-signature": signature, "content-type": "application/json"}
    status: int = client.post("/webhooks/stripe", content=payload, headers=headers).status_code
    return status


def test_stripes_script_is_allowed_on_the_payment_pages_only(client: TestClient, localstripe: str) -> None:
    for path in ("/pay", "/payment-methods"):
        page = client.get(path)
        csp = page.headers["content-security-policy"]
        assert f"script-src 'self' {localstripe}" in csp, path
        assert f"frame-src {localstripe}" in csp, path
        assert f'<script src="{localstripe}/js.stripe.com/v3/"></script>' in page.text
        # The page's SetupIntent, which Stripe's script confirms with the card (no charge).
        assert re.search(r'data-setup-secret="seti_\w+_secret_\w+"', page.text), path
        assert 'name="card_number"' not in page.text  # card numbers go to Stripe, never here
    for path in ("/", "/invoices", "/payments"):
        csp = client.get(path).headers["content-security-policy"]
        assert "script-src" not in csp, path
    assert client.get("/static/gateway-card.js").status_code == 200


def test_pay_one_invoice_with_a_new_card(world: World, client: TestClient, localstripe: str) -> None:
    first = _invoices(world)["INV-0001"]
    method = card_payment_method(localstripe, "4242424242424242")
    form = _pay_form(client, what="invoices", payment_method=method, **{f"invoice_{first.id}": "1"})
    text = _pay(client, form)
    assert "$358.90 was paid with Visa ending 4242" in text
    assert "Your balance now $358.90" in text
    [payment] = _payments(world)
    assert payment.gateway_payment_id is not None
    assert payment.gateway_payment_id.startswith("pi_")
    assert _invoices(world)["INV-0001"].status == "paid"


def test_a_declined_card_takes_nothing(world: World, client: TestClient, localstripe: str) -> None:
    text = _pay(client, _pay_form(client, payment_method=card_payment_method(localstripe, "4000000000000002")))
    assert "Your card was declined. No money was taken." in text
    assert _payments(world) == []
    assert {i.balance for i in _invoices(world).values()} == {INVOICE}


def test_save_a_card_then_pay_with_it_and_a_double_submit_pays_once(
    world: World, client: TestClient, localstripe: str
) -> None:
    page = client.get("/payment-methods").text
    method = card_payment_method(localstripe, "4242424242424242")
    response = client.post("/payment-methods", data={"csrf_token": csrf_token(page), "payment_method": method})
    assert response.status_code == 303, response.text
    assert "Visa ending 4242 12/2030 Default" in text_of(client.get("/payment-methods").text)
    assert _payments(world) == []  # set up, not charged
    declined = client.post(
        "/payment-methods",
        data={"csrf_token": csrf_token(page), "payment_method": card_payment_method(localstripe, "4000000000000002")},
    )
    assert declined.status_code == 400
    assert "Your card was declined" in text_of(declined.text)

    [saved] = run(Payments(world.store).methods(world.acme.id, 1234))
    form = _pay_form(client, method=f"saved-{saved.id}")
    assert "$717.80 was paid with Visa ending 4242" in _pay(client, form)
    assert client.post("/pay", data=form).headers["location"] == f"/pay/{form['attempt']}"
    [payment] = _payments(world)
    assert payment.amount == 2 * INVOICE


def test_pay_a_partial_amount_then_several_invoices(world: World, client: TestClient, localstripe: str) -> None:
    run(factories.payment_settings(world.store, world.acme, allow_partial=True, now=world.clock.now))
    method = card_payment_method(localstripe, "4242424242424242")
    assert "$100.00 was paid with Visa ending 4242" in _pay(
        client, _pay_form(client, what="amount", amount="100.00", payment_method=method)
    )
    assert sum(i.balance for i in _invoices(world).values()) == 2 * INVOICE - 10000

    invoices = _invoices(world)
    chosen = {f"invoice_{invoices[number].id}": "1" for number in ("INV-0001", "INV-0002")}
    method = card_payment_method(localstripe, "4242424242424242")
    assert "$617.80 was paid with Visa ending 4242" in _pay(
        client, _pay_form(client, what="invoices", payment_method=method, **chosen)
    )
    assert {(i.status, i.balance) for i in _invoices(world).values()} == {("paid", 0)}
    intents = [p.gateway_payment_id for p in _payments(world)]
    # Each a PaymentIntent that succeeded at the gateway, for what the books say.
    found = [localstripe_api(localstripe).payment_intents.retrieve(intent) for intent in intents]
    assert sorted((f.status, f.amount) for f in found) == [("succeeded", 10000), ("succeeded", 2 * INVOICE - 10000)]


def test_autopay_charges_the_saved_card_at_stripe_on_the_due_date(
    world: World, client: TestClient, localstripe: str
) -> None:
    run(factories.payment_settings(world.store, world.acme, allow_autopay=True, now=world.clock.now))
    page = client.get("/payment-methods").text
    token = csrf_token(page)
    saved = client.post(
        "/payment-methods",
        data={"csrf_token": token, "payment_method": card_payment_method(localstripe, "4242424242424242")},
    )
    assert saved.status_code == 303, saved.text
    assert client.post("/payment-methods/autopay", data={"csrf_token": token, "autopay": "on"}).status_code == 303

    due = int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp())  # the world's invoices are due 2026-12-01
    autopay = AutoPay(world.store)
    assert run(autopay.run(now=due - 86400)).charged == 0  # not due yet
    assert run(autopay.run(now=due)).charged == 2
    assert run(autopay.run(now=due + 3600)).charged == 0  # charged once, however often it runs
    payments = _payments(world)
    assert len(payments) == 2
    assert {i.status for i in _invoices(world).values()} == {"paid"}
    for payment in payments:
        found = localstripe_api(localstripe).payment_intents.retrieve(payment.gateway_payment_id)
        assert (found.status, found.amount) == ("succeeded", INVOICE)


def test_webhooks_are_verified_and_processed_once_in_any_order(world: World, client: TestClient) -> None:
    first = _invoices(world)["INV-0001"]
    token = "webhook-first-attempt-token-0001"
    attempt = {
        "company_id": world.acme.id,
        "customer_id": 1234,
        "token": token,
        "status": "pending",
        "gateway": "stripe",
        "currency": "USD",
        "amount": INVOICE,
        "applications": json.dumps([[first.id, INVOICE]]),
        "created_at": world.clock.now,
        "updated_at": world.clock.now,
    }
    # The pay form's attempt, made and sent to Stripe; Stripe's webhook comes before the confirmation's answer.
    assert run(world.store.write(lambda conn: stored.claim_attempt(conn, attempt)))

    succeeded = payment_intent_event("evt_1", "payment_intent.succeeded", "pi_webhook_1", token)
    assert _deliver(client, succeeded, secret="whsec_wrong") == 400
    assert _payments(world) == []
    assert _deliver(client, succeeded) == 200
    assert _deliver(client, succeeded) == 200  # delivered twice
    failed_late = payment_intent_event("evt_2", "payment_intent.payment_failed", "pi_webhook_1", token)
    assert _deliver(client, failed_late) == 200  # out of order: a failure after the success changes nothing
    [payment] = _payments(world)
    assert (payment.gateway_payment_id, payment.amount) == ("pi_webhook_1", INVOICE)
    assert _invoices(world)["INV-0001"].status == "paid"
    result = text_of(client.get(f"/pay/{token}").text)
    assert "Thank you: your payment was received" in result
    assert client.post("/webhooks/stripe", content=b"{}", headers={"stripe-signature": "t=1,v1=00"}).status_code == 400
    assert client.post("/webhooks/test", content=b"{}").status_code == 404


def test_an_unreachable_gateway_takes_nothing_and_says_so(world: World, client: TestClient, localstripe: str) -> None:
    method = card_payment_method(localstripe, "4242424242424242")
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run(Payments(world.store).configure(world.acme, {"api_base": closed}, CLI, now=world.clock.now))
    assert "The card form could not be loaded just now." in text_of(client.get("/payment-methods").text)
    text = _pay(client, _pay_form(client, payment_method=method))
    assert "The payment could not be taken just now. No money was taken." in text
    assert _payments(world) == []


def _stripe_api(localstripe: str) -> Any:
    return stripe.StripeClient("sk_test_billportal", base_addresses={"api": localstripe}).v1


def _gateway_customers(world: World) -> list[tuple[int, int, str, str]]:
    def rows(conn: Any) -> list[tuple[int, int, str, str]]:
        c = gateway_customers.c
        query = select(c.company_id, c.customer_id, c.gateway, c.gateway_customer_id).order_by(c.customer_id)
        return [tuple(row) for row in conn.execute(query)]

    return run(world.store.read(rows))


def test_saved_cards_and_payments_share_one_stripe_customer(world: World, client: TestClient, localstripe: str) -> None:
    page = client.get("/payment-methods").text
    for number in ("4242424242424242", "5555555555554444"):
        method = card_payment_method(localstripe, number)
        saved = client.post("/payment-methods", data={"csrf_token": csrf_token(page), "payment_method": method})
        assert saved.status_code == 303, saved.text
    [(company_id, customer_id, gateway, stripe_customer)] = _gateway_customers(world)
    assert (company_id, customer_id, gateway) == (world.acme.id, 1234, "stripe")
    assert stripe_customer.startswith("cus_")

    api = _stripe_api(localstripe)
    found = api.customers.retrieve(stripe_customer)
    assert found.metadata.to_dict() == {"billportal_company": str(world.acme.id), "billportal_customer": "1234"}
    attached = api.payment_methods.list(params={"customer": stripe_customer, "type": "card"})
    assert sorted(pm.card.last4 for pm in attached.data) == ["4242", "4444"]
    methods = run(Payments(world.store).methods(world.acme.id, 1234))
    assert {m.gateway_ref.partition(":")[0] for m in methods} == {stripe_customer}

    first = _invoices(world)["INV-0001"]
    new_card = card_payment_method(localstripe, "4242424242424242")
    form = _pay_form(client, what="invoices", payment_method=new_card, **{f"invoice_{first.id}": "1"})
    assert "$358.90 was paid with Visa ending 4242" in _pay(client, form)
    saved_card = next(m for m in methods if m.last4 == "4444")
    assert "$358.90 was paid with Visa ending 4444" in _pay(client, _pay_form(client, method=f"saved-{saved_card.id}"))
    intents = [api.payment_intents.retrieve(str(p.gateway_payment_id)) for p in _payments(world)]
    assert [intent.customer for intent in intents] == [stripe_customer, stripe_customer]
    assert len(_gateway_customers(world)) == 1  # reused, never made again
