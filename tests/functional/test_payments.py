"""Paying invoices online in the portal, with the built-in test gateway, over HTTP.

Concurrent submissions of one form, from two app processes on PostgreSQL, are in
tests/scaleout/test_payments_concurrency.py.

Acme's customer 1234 owes two invoices of 358.90 (INV-0001 and INV-0002, the shared
world's). Every test pays through the real app and reads the result back from the
pages and the billing core: balances add up and a form pays at most once.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from billportal import demo
from billportal.app import build_app
from billportal.core.config import Settings
from billportal.core.crypto import Sealed
from billportal.core.errors import Refused
from billportal.services import audit
from billportal.services.audit import CLI
from billportal.services.billing import Billing
from billportal.services.gateways import GATEWAY_SEAL_PURPOSE
from billportal.services.payments import Payments
from billportal.storage.documents import Scope
from billportal.storage.records import Invoice, Payment
from billportal.storage.store import Store
from tests import factories
from tests.conftest import Clock, World, run
from tests.functional.dashboard_support import PASSWORD, admin_of_acme
from tests.functional.portal_world import csrf_token, pdf_text, signed_in, text_of
from tests.functional.test_dashboard_cli import cli

__all__ = ["cli"]  # a fixture, imported so that it is found here

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
INVOICE = 35890  # each of the world's invoices


@pytest.fixture
def client(world: World) -> TestClient:
    run(factories.payment_settings(world.store, world.acme, gateway="test", test_mode=True, now=world.clock.now))
    return signed_in(world)


def _invoices(world: World) -> dict[str, Invoice]:
    rows, _ = run(world.billing.invoices(Scope(world.acme.id, 1234)))
    return {invoice.number: invoice for invoice in rows}


def _payments(world: World) -> list[Payment]:
    rows, _ = run(world.billing.documents("payment", Scope(world.acme.id, 1234)))
    return rows


def _pay_form(client: TestClient, card: str | None = GOOD_CARD, **fields: str) -> dict[str, str]:
    """The pay page's form as a customer fills it in (a new page: a new one-time token)."""
    page = client.get("/pay").text
    token = re.search(r'name="attempt" value="([^"]+)"', page)
    assert token is not None
    form = {"csrf_token": csrf_token(page), "attempt": token[1], "what": "balance", "method": "new"}
    if card is not None:
        form.update(card_number=card, card_expiry="12 / 30", card_cvc="123")
    form.update(fields)
    return form


def _pay(client: TestClient, form: dict[str, str]) -> str:
    """Submit the pay form; the result page's text."""
    response = client.post("/pay", data=form)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/pay/{form['attempt']}"
    return text_of(client.get(response.headers["location"]).text)


def test_the_pay_page_offers_cards_in_test_mode_only_when_set(world: World, client: TestClient) -> None:
    text = text_of(client.get("/pay").text)
    assert "Test mode." in text
    assert "Pay by card" in text
    assert "Paying by card online is not available yet" not in text
    with pytest.raises(Refused) as refused:
        run(factories.payment_settings(world.store, world.acme, test_mode=False, now=world.clock.now))
    assert refused.value.code == "test_mode_required"
    run(factories.payment_settings(world.store, world.acme, gateway="none", test_mode=False, now=world.clock.now))
    text = text_of(client.get("/pay").text)
    assert "Pay by card" not in text
    assert "Test mode" not in text
    assert "Paying by card online is not available yet" in text


def test_pay_one_chosen_invoice(world: World, client: TestClient) -> None:
    invoices = _invoices(world)
    first = invoices["INV-0001"]
    text = _pay(client, _pay_form(client, what="invoices", **{f"invoice_{first.id}": "1"}))
    assert "Thank you: your payment was received" in text
    assert "$358.90 was paid with Visa ending 4242" in text
    assert "Your balance now $358.90" in text
    after = _invoices(world)
    assert after["INV-0001"].status == "paid"
    assert after["INV-0002"].balance == INVOICE
    [payment] = _payments(world)
    assert (payment.method, payment.method_detail, payment.amount) == ("card", "Visa ending 4242", INVOICE)
    assert payment.gateway_payment_id is not None
    assert payment.gateway_payment_id.startswith("test_pi_")
    receipt = text_of(client.get(f"/payments/{payment.id}").text)
    assert "Method Visa ending 4242" in receipt
    assert "Visa ending 4242" in pdf_text(client.get(f"/payments/{payment.id}/pdf").content)


def test_pay_the_whole_balance_pays_every_open_invoice(world: World, client: TestClient) -> None:
    text = _pay(client, _pay_form(client))
    assert "$717.80 was paid with Visa ending 4242" in text
    assert "Your balance now $0.00" in text
    assert {i.status for i in _invoices(world).values()} == {"paid"}
    [listed] = _payments(world)
    payment = run(world.billing.get("payment", Scope(world.acme.id), listed.id))
    assert sorted(a.amount for a in payment.applications) == [INVOICE, INVOICE]
    assert payment.unapplied == 0


def test_a_partial_amount_only_where_the_company_allows_it(world: World, client: TestClient) -> None:
    form = _pay_form(client, what="amount", amount="100.00")
    response = client.post("/pay", data=form)
    assert response.status_code == 400
    assert "part payments are not taken here" in text_of(response.text)
    assert _payments(world) == []

    run(factories.payment_settings(world.store, world.acme, allow_partial=True, now=world.clock.now))
    for amount, message in (("0", "more than zero"), ("717.81", "at most what is owed"), ("1.234", "such as 25.00")):
        response = client.post("/pay", data=_pay_form(client, what="amount", amount=amount))
        assert response.status_code == 400
        assert message in text_of(response.text)
    text = _pay(client, _pay_form(client, what="amount", amount="400.00"))
    assert "$400.00 was paid" in text
    assert "Your balance now $317.80" in text
    invoices = _invoices(world)
    assert (invoices["INV-0001"].status, invoices["INV-0002"].balance) == ("paid", 2 * INVOICE - 40000)


def test_a_declined_card_says_so_and_takes_nothing(world: World, client: TestClient, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    text = _pay(client, _pay_form(client, card=DECLINED_CARD))
    assert "Your payment was not taken" in text
    assert "Your card was declined. No money was taken." in text
    assert "Your balance now $717.80" in text
    assert _payments(world) == []
    assert {i.balance for i in _invoices(world).values()} == {INVOICE}
    # A card number is never logged, nor sent back in a page.
    bad = client.post("/pay", data=_pay_form(client, card="4242 4242 4242 4242", card_cvc="x"))
    assert bad.status_code == 400
    assert "security code" in text_of(bad.text)
    assert "4242424242424242" not in bad.text
    assert "4242 4242 4242 4242" not in bad.text.replace("test card 4242 4242 4242 4242", "")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "4000000000000002" not in logged
    assert "4242424242424242" not in logged


def test_not_a_test_card_is_refused_in_test_mode(world: World, client: TestClient) -> None:
    text = _pay(client, _pay_form(client, card="4111 1111 1111 1111"))
    assert "Test mode takes only test card numbers" in text
    assert _payments(world) == []


def test_a_double_submit_or_a_reload_pays_once(world: World, client: TestClient) -> None:
    form = _pay_form(client)
    first = client.post("/pay", data=form)
    again = client.post("/pay", data=form)  # the second click, or the browser's resend
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert client.post("/pay", data=form).headers["location"] == first.headers["location"]
    [payment] = _payments(world)
    assert payment.amount == 2 * INVOICE
    assert "Your balance now $0.00" in text_of(client.get(first.headers["location"]).text)


def test_the_same_form_after_a_decline_does_not_pay_but_a_new_one_does(world: World, client: TestClient) -> None:
    form = _pay_form(client, card=DECLINED_CARD)
    _pay(client, form)
    # Resending the declined form with a good card gives the first answer: a new payment needs a new form.
    assert "Your payment was not taken" in _pay(client, {**form, "card_number": GOOD_CARD})
    assert _payments(world) == []
    assert "was paid with Visa ending 4242" in _pay(client, _pay_form(client))
    assert len(_payments(world)) == 1


def test_a_token_of_another_customer_shows_nothing(world: World, client: TestClient) -> None:
    form = _pay_form(client)
    _pay(client, form)
    other = signed_in(world, customer_id=1235)
    assert other.get(f"/pay/{form['attempt']}").status_code == 404
    page = other.get("/pay").text
    stolen = {**form, "csrf_token": csrf_token(page)}
    response = other.post("/pay", data=stolen)
    assert other.get(response.headers["location"]).status_code == 404
    assert len(_payments(world)) == 1
    assert client.get("/pay/not-a-token").status_code == 404


def test_save_a_card_then_pay_with_it(world: World, client: TestClient) -> None:
    page = client.get("/payment-methods").text
    assert "No saved cards." in text_of(page)
    response = client.post(
        "/payment-methods",
        data={"csrf_token": csrf_token(page), "card_number": GOOD_CARD, "card_expiry": "04/29", "card_cvc": "123"},
    )
    assert response.status_code == 303
    text = text_of(client.get(response.headers["location"]).text)
    assert "Your card is saved. It was not charged." in text
    assert "Visa ending 4242 04/2029 Default" in text
    assert _payments(world) == []
    client.post(
        "/payment-methods",
        data={
            "csrf_token": csrf_token(page),
            "card_number": "5555 5555 5555 4444",
            "card_expiry": "05/31",
            "card_cvc": "321",
        },
    )
    methods = run(Payments(world.store).methods(world.acme.id, 1234))
    assert [(m.label, m.is_default) for m in methods] == [("Visa ending 4242", True), ("Mastercard ending 4444", False)]
    mastercard = methods[1]
    assert (
        client.post(f"/payment-methods/{mastercard.id}/default", data={"csrf_token": csrf_token(page)}).status_code
        == 303
    )
    assert "Mastercard ending 4444 05/2031 Default" in text_of(client.get("/payment-methods").text)

    form = _pay_form(client, card=None, method=f"saved-{mastercard.id}")
    assert "$717.80 was paid with Mastercard ending 4444" in _pay(client, form)
    [payment] = _payments(world)
    assert payment.method_detail == "Mastercard ending 4444"

    assert (
        client.post(f"/payment-methods/{mastercard.id}/remove", data={"csrf_token": csrf_token(page)}).status_code
        == 303
    )
    text = text_of(client.get("/payment-methods").text)
    assert "Mastercard" not in text
    assert "Visa ending 4242 04/2029 Default" in text  # the one left became the default


def test_saved_cards_are_the_customers_own(world: World, client: TestClient) -> None:
    page = client.get("/payment-methods").text
    client.post(
        "/payment-methods",
        data={"csrf_token": csrf_token(page), "card_number": GOOD_CARD, "card_expiry": "04/29", "card_cvc": "123"},
    )
    other = signed_in(world, customer_id=1235)
    other_page = other.get("/payment-methods").text
    assert "Visa ending 4242" not in other_page
    method_id = int(re.findall(r"/payment-methods/(\d+)/remove", page + client.get("/payment-methods").text)[0])
    token = csrf_token(other_page)
    assert other.post(f"/payment-methods/{method_id}/remove", data={"csrf_token": token}).status_code == 404
    assert other.post(f"/payment-methods/{method_id}/default", data={"csrf_token": token}).status_code == 404
    form = _pay_form(other, card=None, method=f"saved-{method_id}")
    response = other.post("/pay", data=form)
    assert response.status_code == 400
    assert "Choose one of your saved cards" in text_of(response.text)
    assert "Visa ending 4242" in text_of(client.get("/payment-methods").text)


def test_a_declined_card_is_not_saved(world: World, client: TestClient) -> None:
    page = client.get("/payment-methods").text
    response = client.post(
        "/payment-methods",
        data={"csrf_token": csrf_token(page), "card_number": DECLINED_CARD, "card_expiry": "04/29", "card_cvc": "123"},
    )
    assert response.status_code == 400
    assert "Your card was declined" in text_of(response.text)
    assert "No saved cards." in text_of(response.text)


def test_paying_needs_the_csrf_token_and_a_form_token(world: World, client: TestClient) -> None:
    form = _pay_form(client)
    assert client.post("/pay", data={**form, "csrf_token": "x"}).status_code == 403
    assert client.post("/pay", data={**form, "attempt": "short"}).status_code == 400
    assert _payments(world) == []


def test_an_invoice_paid_meanwhile_leaves_the_money_as_credit(world: World, client: TestClient) -> None:
    """The company records a check for INV-0001 between the page and the card payment: nothing is paid twice."""
    first = _invoices(world)["INV-0001"]
    form = _pay_form(client, what="invoices", **{f"invoice_{first.id}": "1"})
    run(
        factories.payment(
            world.store, world.acme.id, 1234, amount=INVOICE, applications=[(first.id, INVOICE)], now=world.clock.now
        )
    )
    response = client.post("/pay", data=form)
    assert response.status_code == 400  # the plan is checked against the invoices as they are now
    assert "Choose at least one open invoice" in text_of(response.text)
    assert len(_payments(world)) == 1


def test_the_demo_customer_pays_an_invoice_with_the_test_card(store: Store, clock: Clock, settings: Settings) -> None:
    """`make demo`: the demo company takes the test card in test mode; a customer pays and sees the invoice paid."""
    sso_key = run(demo.seed(store, clock.now))
    client = TestClient(build_app(settings, store, clock), base_url="https://acme.localhost", follow_redirects=False)
    claims = {"sub": 1234, "iss": "demo", "exp": clock.now + 600}
    assert client.get(f"/login/{jwt.encode(claims, sso_key, algorithm='HS256')}").status_code == 303
    assert "Test mode." in text_of(client.get("/pay").text)
    company = run(store.company("acme"))
    assert company is not None
    rows, _ = run(Billing(store).invoices(Scope(company.id, 1234), statuses=("open",)))
    invoice = rows[0]
    form = _pay_form(client, what="invoices", **{f"invoice_{invoice.id}": "1"})
    assert "Thank you: your payment was received" in _pay(client, form)
    page = text_of(client.get(f"/invoices/{invoice.id}").text)
    assert "Paid" in page
    assert "Visa ending 4242" in page


def test_the_dashboard_shows_the_gateway_and_test_mode_never_a_secret(world: World, client: TestClient) -> None:
    dashboard = admin_of_acme(world)
    text = text_of(dashboard.get("/settings/payments").text)
    assert "Test mode." in text
    assert "Gateway Built-in test gateway Test mode" in text
    assert "Partial payments Not allowed" in text
    run(
        Payments(world.store).configure(
            world.acme,
            {"gateway": "stripe", "test_mode": False, "publishable_key": "pk_test_123"},
            CLI,
            now=world.clock.now,
            secret_key="sk_test_secret_value_1234567890",
        )
    )
    page = dashboard.get("/settings/payments").text
    assert "Gateway Stripe" in text_of(page)
    assert "Secret key Set (sealed; never shown again)" in text_of(page)
    assert "sk_test_secret_value" not in page
    assert "Test mode." not in text_of(page)
    assert "Gateway Stripe Test mode" not in text_of(page)
    events = run(world.store.admins.audit_events(world.acme.id, before_id=None, limit=5))
    assert "Online payment settings changed" in [audit.action_label(e.action) for e in events]
    assert all("sk_test" not in e.detail for e in events)


def test_the_cli_configures_a_gateway_with_secrets_from_stdin_never_arguments(world: World, cli: Any) -> None:
    status, out, err = cli("payments", "configure", "--tenant", "acme", "--gateway", "test")
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert "test mode" in err
    status, out, _ = cli(
        "payments",
        "configure",
        "--tenant",
        "acme",
        "--gateway",
        "stripe",
        "--publishable-key",
        "pk_test_1",
        "--api-base",
        "http://127.0.0.1:8420",
        "--allow-partial",
        "on",
        "--autopay-retry-days",
        "2,5",
        "--secrets-stdin",
        stdin="sk_test_from_stdin\nwhsec_from_stdin\n",
    )
    assert status == 0
    shown = json.loads(out)
    assert shown == {
        "gateway": "stripe",
        "test_mode": False,
        "allow_partial": True,
        "allow_saved_methods": True,
        "allow_autopay": False,
        "autopay_retry_days": "2,5",
        "publishable_key": "pk_test_1",
        "api_base": "http://127.0.0.1:8420",
        "secret_key_set": True,
        "secret_key_hint": "…tdin",
        "webhook_secret_set": True,
        "webhook_secret_hint": "…tdin",
    }
    assert "sk_test_from_stdin" not in out
    settings = run(Payments(world.store).settings(world.acme.id))
    opened = world.store.master_keys.unseal(
        Sealed.from_text(settings.secret_key_sealed), GATEWAY_SEAL_PURPOSE, world.acme.id
    )
    assert opened == b"sk_test_from_stdin"
    for bad in (["--api-base", "ftp://x"], ["--autopay-retry-days", "3,1"]):
        status, out, err = cli("payments", "configure", "--tenant", "acme", *bad)
        assert (status != 0, out) == (True, "")
        assert err.count("\n") == 1, err
    assert json.loads(cli("payments", "show", "--tenant", "acme")[1])["autopay_retry_days"] == "2,5"


def test_autopay_charges_on_the_due_date_and_retries_a_failure_on_schedule(
    world: World, client: TestClient, cli: Any
) -> None:
    page = client.get("/payment-methods").text
    assert "AutoPay" not in text_of(page)  # not offered until the company allows it
    run(
        factories.payment_settings(
            world.store, world.acme, allow_autopay=True, autopay_retry_days="1,3", now=world.clock.now
        )
    )
    page = client.get("/payment-methods").text
    token = csrf_token(page)
    # A card that saves but is declined when charged, then AutoPay on.
    saved = client.post(
        "/payment-methods",
        data={"csrf_token": token, "card_number": "4000 0000 0000 0341", "card_expiry": "04/40", "card_cvc": "123"},
    )
    assert saved.status_code == 303
    assert client.post("/payment-methods/autopay", data={"csrf_token": token, "autopay": "on"}).status_code == 303
    assert "AutoPay is on" in text_of(client.get("/payment-methods").text)

    due = int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp())  # the world's invoices are due 2026-12-01
    day = 86400

    def autopay(at: int) -> dict[str, Any]:
        status, out, _ = cli("autopay", "run", "--at", str(at))
        assert status == 0
        report: dict[str, Any] = json.loads(out)
        return report

    assert autopay(due - day) == {"ran": True, "charged": 0, "declined": 0}  # not due yet
    assert autopay(due) == {"ran": True, "charged": 0, "declined": 2}  # both invoices tried, declined
    failed = text_of(client.get("/payment-methods").text)
    assert "Charges that failed" in failed
    assert "Your card was declined" in failed
    assert autopay(due + 3600)["declined"] == 0  # the same day: no retry
    assert autopay(due + day)["declined"] == 2  # the first retry, a day later
    assert autopay(due + 2 * day)["declined"] == 0
    assert autopay(due + 4 * day)["declined"] == 2  # the second, three days after the first
    assert autopay(due + 30 * day)["declined"] == 0  # the schedule is done
    assert _payments(world) == []

    # A good default card: the next invoice due is charged once, however often AutoPay runs.
    client.post(
        "/payment-methods",
        data={"csrf_token": token, "card_number": GOOD_CARD, "card_expiry": "04/40", "card_cvc": "123"},
    )
    good = next(m for m in run(Payments(world.store).methods(world.acme.id, 1234)) if m.last4 == "4242")
    assert client.post(f"/payment-methods/{good.id}/default", data={"csrf_token": token}).status_code == 303
    invoice = run(factories.invoice(world.store, world.acme.id, 1234, due_on="2026-12-20", now=world.clock.now))
    at = int(datetime(2026, 12, 20, 12, tzinfo=UTC).timestamp())
    assert autopay(at)["charged"] == 1
    assert autopay(at)["charged"] == 0
    [payment] = _payments(world)
    assert (payment.amount, payment.method_detail) == (INVOICE, "Visa ending 4242")
    assert _invoices(world)[invoice.number].status == "paid"
    assert client.post("/payment-methods/autopay", data={"csrf_token": token, "autopay": "off"}).status_code == 303
    assert "AutoPay is off" in text_of(client.get("/payment-methods").text)


def test_the_dashboard_changes_payment_settings_and_secrets_only_with_the_password(world: World) -> None:
    dashboard = admin_of_acme(world)
    refused = dashboard.post("/settings/payments", {"gateway": "test", "autopay_retry_days": "1,3,7"})
    assert refused.status_code == 400
    assert "The test gateway can only be used in test mode." in text_of(refused.text)
    saved = dashboard.post(
        "/settings/payments",
        {"gateway": "stripe", "allow_partial": "on", "autopay_retry_days": "2,4", "publishable_key": "pk_test_9"},
    )
    assert saved.status_code == 303
    settings = run(Payments(world.store).settings(world.acme.id))
    assert (settings.gateway, settings.allow_partial, settings.allow_saved_methods) == ("stripe", True, False)
    assert settings.autopay_retry_days == "2,4"

    secret = {"secret_key": "sk_test_typed_in_the_dashboard", "webhook_secret": "whsec_typed"}
    asked = dashboard.post("/settings/payments/secrets", {**secret, "password": "not the password"})
    assert asked.status_code == 403
    assert "Confirm your password" in asked.text
    assert "_typed" not in asked.text  # a secret is never written back into a page, not even this one
    assert not run(Payments(world.store).settings(world.acme.id)).secret_key_sealed  # nothing stored
    stored_now = dashboard.post("/settings/payments/secrets", {**secret, "password": PASSWORD})
    assert stored_now.status_code == 303
    page = dashboard.get("/settings/payments").text
    assert "Secret key Set (sealed; never shown again)" in text_of(page)
    assert "sk_test_typed" not in page
    assert "whsec_typed" not in page
