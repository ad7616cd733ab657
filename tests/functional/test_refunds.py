"""Refunds over HTTP: the REST API and the portal, offline payments and the built-in test gateway.

Acme's customer 1234 owes two invoices of 358.90 (INV-0001 and INV-0002, the shared
world's). Every refund goes through the real app; balances, receipts and statements
are read back and must add up. Refunds through Stripe (localstripe) are in
test_stripe.py; concurrent refunds from two app processes in tests/scaleout/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from billportal.core.clock import local_date
from billportal.services.statements import Month
from billportal.storage.documents import Scope
from billportal.storage.records import Invoice
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import PASSWORD, admin_of_acme
from tests.functional.portal_world import pdf_text, signed_in, text_of
from tests.functional.test_api import create, dashboard, error, new_key
from tests.functional.test_payments import _pay, _pay_form

INVOICE = 35890


@pytest.fixture
def api(world: World) -> TestClient:
    return dashboard(world, new_key(world))


def _invoices(world: World) -> dict[str, Invoice]:
    rows, _ = run(world.billing.invoices(Scope(world.acme.id, 1234)))
    return {invoice.number: invoice for invoice in rows}


def _today(world: World) -> str:
    return local_date(world.clock.now, world.acme.time_zone).isoformat()


def _books_add_up(world: World) -> tuple[int, int]:
    """The balance-forward statement's closing balance, the open items and the balance due all agree."""
    today = _today(world)
    month = Month.of(today)
    forward = run(world.billing.balance_forward_statement(world.acme.id, 1234, "USD", month, today=today))
    items = run(world.billing.open_item_statement(world.acme.id, 1234, "USD", month, today=today))
    due = run(world.billing.account_balance(world.acme.id, 1234, "USD", today=today))
    assert forward.closing == items.total == due.due
    assert forward.closing == forward.opening + forward.invoiced - forward.paid + forward.refunded - forward.credited
    return forward.closing, forward.refunded


def _check_payment(api: TestClient, world: World, amount: int, *, applied: bool = True) -> dict[str, Any]:
    """A check for ``amount``, applied to both of the world's invoices (or to none: account credit)."""
    invoices = _invoices(world)
    applications = [{"invoice_id": invoices[n].id, "amount": INVOICE} for n in ("INV-0001", "INV-0002")]
    body = {"customer_id": 1234, "received_on": _today(world), "method": "check", "amount": amount}
    return create(api, "payments", {**body, "applications": applications if applied else []})


def _refund(api: TestClient, payment_id: int, body: dict[str, Any], **headers: str) -> Any:
    return api.post(f"/api/v1/payments/{payment_id}/refunds", json=body, headers=headers)


def test_whole_and_partial_refunds_of_an_offline_payment_add_up(world: World, api: TestClient) -> None:
    payment = _check_payment(api, world, 2 * INVOICE + 8220)  # 82.20 of it stays as credit
    assert (payment["amount_refunded"], payment["refunds"], payment["gateway"]) == (0, [], None)
    owed_before, _ = _books_add_up(world)

    first = _refund(api, payment["id"], {"amount": 5000, "reason": "Returned one pair"})
    assert first.status_code == 201, first.text
    refund = first.json()
    assert (refund["object"], refund["amount"], refund["status"], refund["source"]) == (
        "refund",
        5000,
        "succeeded",
        "api",
    )
    assert refund["gateway_refund_id"] is None  # an offline payment is refunded in the books only
    assert {i.status for i in _invoices(world).values()} == {"paid"}  # the credit went first
    assert _books_add_up(world) == (owed_before + 5000, 5000)

    second = _refund(api, payment["id"], {"amount": 10000, "reason": "Late delivery"})
    assert second.status_code == 201, second.text
    invoices = _invoices(world)
    # 32.20 of credit left, then 67.80 off the newest application (INV-0002); INV-0001 stays paid.
    assert (invoices["INV-0001"].status, invoices["INV-0001"].balance) == ("paid", 0)
    assert (invoices["INV-0002"].status, invoices["INV-0002"].balance) == ("open", 6780)
    assert invoices["INV-0002"].amount_paid == INVOICE - 6780
    assert _books_add_up(world) == (owed_before + 15000, 15000)

    left = 2 * INVOICE + 8220 - 15000
    error(_refund(api, payment["id"], {"amount": left + 1}), 422, "refund_exceeds_payment", "amount")
    error(_refund(api, payment["id"], {"amount": 0}), 400, "invalid_field", "amount")
    error(_refund(api, payment["id"], {"amount": 100, "colour": "red"}), 400, "unknown_field")
    rest = _refund(api, payment["id"], {"reason": "Order cancelled"})  # no amount: all that is left
    assert (rest.status_code, rest.json()["amount"]) == (201, left)
    assert {(i.status, i.balance) for i in _invoices(world).values()} == {("open", INVOICE)}
    error(_refund(api, payment["id"], {}), 422, "payment_fully_refunded")
    assert _books_add_up(world) == (owed_before + 2 * INVOICE + 8220, 2 * INVOICE + 8220)

    found = api.get(f"/api/v1/payments/{payment['id']}").json()
    assert (found["amount"], found["amount_refunded"], found["unapplied"], found["applications"]) == (
        2 * INVOICE + 8220,
        2 * INVOICE + 8220,
        0,
        [],
    )
    assert [r["amount"] for r in found["refunds"]] == [5000, 10000, left]
    listed = api.get(f"/api/v1/payments/{payment['id']}/refunds").json()
    assert [r["reason"] for r in listed["data"]] == ["Returned one pair", "Late delivery", "Order cancelled"]
    error(api.delete(f"/api/v1/payments/{payment['id']}"), 409, "payment_has_refunds")

    # The customer sees the refunds on the payment's receipt and on the statement.
    portal = signed_in(world)
    receipt = text_of(portal.get(f"/payments/{payment['id']}").text)
    assert "Refunded $50.00" in receipt
    assert "Returned one pair" in receipt
    receipt_pdf = pdf_text(portal.get(f"/payments/{payment['id']}/pdf").content)
    assert "Late delivery" in receipt_pdf
    assert "Refunded" in receipt_pdf
    statement = text_of(portal.get("/statements/balance-forward").text)
    assert statement.count("Refund of payment") == 3
    assert "Refunds + $800.00" in statement


def test_a_refund_retried_with_its_idempotency_key_refunds_once(world: World, api: TestClient) -> None:
    payment = _check_payment(api, world, 2 * INVOICE)
    once = _refund(api, payment["id"], {"amount": 1000}, **{"Idempotency-Key": "refund-1"})
    again = _refund(api, payment["id"], {"amount": 1000}, **{"Idempotency-Key": "refund-1"})
    assert (once.status_code, again.status_code) == (201, 201)
    assert again.json() == once.json()
    assert again.headers["idempotent-replayed"] == "true"
    error(
        _refund(api, payment["id"], {"amount": 2000}, **{"Idempotency-Key": "refund-1"}), 422, "idempotency_key_reused"
    )
    assert api.get(f"/api/v1/payments/{payment['id']}").json()["amount_refunded"] == 1000


def test_refunds_of_missing_or_other_companies_payments_are_not_found(world: World, api: TestClient) -> None:
    theirs = run(factories.payment(world.store, world.globex.id, 1234, now=world.clock.now, amount=500))
    for payment_id in (theirs.id, 999_999, 0):
        error(_refund(api, payment_id, {"amount": 100}), 404, "not_found")
        error(api.get(f"/api/v1/payments/{payment_id}/refunds"), 404, "not_found")
    assert run(world.billing.get("payment", Scope(world.globex.id), theirs.id)).amount_refunded == 0


def test_an_online_payment_is_refunded_at_the_test_gateway_too(world: World, api: TestClient) -> None:
    run(factories.payment_settings(world.store, world.acme, gateway="test", test_mode=True, now=world.clock.now))
    portal = signed_in(world)
    first = _invoices(world)["INV-0001"]
    assert "was paid with Visa ending 4242" in _pay(
        portal, _pay_form(portal, what="invoices", **{f"invoice_{first.id}": "1"})
    )
    [payment] = api.get("/api/v1/payments").json()["data"]
    assert payment["gateway"] == "test"
    assert payment["gateway_payment_id"].startswith("test_pi_")

    partial = _refund(api, payment["id"], {"amount": 890, "reason": "Damaged box"}, **{"Idempotency-Key": "k-1"})
    assert partial.status_code == 201, partial.text
    assert partial.json()["gateway_refund_id"].startswith("test_re_")
    assert (_invoices(world)["INV-0001"].status, _invoices(world)["INV-0001"].balance) == ("open", 890)
    # With its gateway turned off, an online payment is not refunded (nor silently refunded offline only).
    run(factories.payment_settings(world.store, world.acme, gateway="none", now=world.clock.now))
    error(_refund(api, payment["id"], {}), 422, "gateway_unavailable")
    run(factories.payment_settings(world.store, world.acme, gateway="test", now=world.clock.now))
    whole = _refund(api, payment["id"], {})
    assert whole.json()["amount"] == INVOICE - 890
    assert whole.json()["gateway_refund_id"] != partial.json()["gateway_refund_id"]
    error(_refund(api, payment["id"], {"amount": 1}), 422, "refund_exceeds_payment")
    assert _invoices(world)["INV-0001"].balance == INVOICE
    _books_add_up(world)
    receipt = text_of(portal.get(f"/payments/{payment['id']}").text)
    assert "Refunded $8.90" in receipt
    assert "Damaged box" in receipt


def test_refunds_are_in_the_openapi_document(world: World, api: TestClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    assert "post" in document["paths"]["/payments/{id}/refunds"]
    assert "get" in document["paths"]["/payments/{id}/refunds"]
    payment = document["components"]["schemas"]["Payment"]["properties"]
    assert {"amount_refunded", "refunds", "gateway", "gateway_payment_id"} <= set(payment)


# -- the dashboard ----------------------------------------------------------------------------------


def _token_of(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match is not None, "no refund form on the page"
    return match[1]


def test_the_dashboard_lists_payments_and_refunds_one_after_a_confirmation_and_the_password(
    world: World, api: TestClient
) -> None:
    run(factories.payment_settings(world.store, world.acme, gateway="test", test_mode=True, now=world.clock.now))
    portal = signed_in(world)
    first = _invoices(world)["INV-0001"]
    _pay(portal, _pay_form(portal, what="invoices", **{f"invoice_{first.id}": "1"}))
    world.clock.advance(86400)
    check = _check_payment(api, world, 1000, applied=False)
    dashboard = admin_of_acme(world)

    listing = dashboard.get("/payments")
    assert listing.status_code == 200
    assert '<a href="/payments" aria-current="page">Payments</a>' in listing.text  # in the menu
    rows = text_of(listing.text)
    assert rows.index(check["number"]) < rows.index("PAY-00001")  # newest first
    assert "Visa ending 4242 test test_pi_" in rows
    online = text_of(dashboard.get("/payments?kind=online").text)
    assert ("PAY-00001" in online, check["number"] in online) == (True, False)
    offline = text_of(dashboard.get("/payments?kind=offline").text)
    assert ("PAY-00001" in offline, check["number"] in offline) == (False, True)

    [paid] = [p for p in api.get("/api/v1/payments").json()["data"] if p["gateway"] == "test"]
    page = dashboard.get(f"/payments/{paid['id']}").text
    assert paid["gateway_payment_id"] in page
    form = {"amount": "5.00", "reason": "Box was dented", "token": _token_of(page)}
    world.clock.advance(600)  # the password given at sign-in is not recent any more
    asked = dashboard.post(f"/payments/{paid['id']}/refunds", form)
    assert asked.status_code == 200  # the password first
    assert "Confirm your password" in asked.text
    assert 'name="amount" value="5.00"' in asked.text
    confirm = dashboard.post(f"/payments/{paid['id']}/refunds", {**form, "password": PASSWORD})
    assert confirm.status_code == 200
    assert "Refund $5.00 of payment PAY-00001?" in text_of(confirm.text)
    assert "at the payment gateway and in the books" in text_of(confirm.text)
    assert api.get(f"/api/v1/payments/{paid['id']}").json()["amount_refunded"] == 0  # nothing yet
    done = dashboard.post(f"/payments/{paid['id']}/refunds", {**form, "confirm": "yes"})
    assert done.status_code == 303
    again = dashboard.post(f"/payments/{paid['id']}/refunds", {**form, "confirm": "yes"})  # a double submit
    assert again.status_code == 303
    found = api.get(f"/api/v1/payments/{paid['id']}").json()
    assert found["amount_refunded"] == 500
    [refund] = found["refunds"]
    assert (refund["source"], refund["reason"]) == ("dashboard", "Box was dented")
    assert refund["gateway_refund_id"].startswith("test_re_")
    shown = text_of(dashboard.get(done.headers["location"]).text)
    assert "The refund is made." in shown
    assert "Box was dented dashboard succeeded" in shown
    assert "Left to refund $353.90" in shown
    assert _invoices(world)["INV-0001"].balance == 500
    assert "Payment refunded" in text_of(dashboard.get("/audit").text)

    too_much = {"amount": "400.00", "reason": "", "token": _token_of(dashboard.get(f"/payments/{paid['id']}").text)}
    refused = dashboard.post(f"/payments/{paid['id']}/refunds", {**too_much, "confirm": "yes"})
    assert refused.status_code == 400
    assert "At most $353.90 is left to refund." in text_of(refused.text)
    for bad in ("abc", "-1", "0", "1.001", "NaN", "1e99"):
        answer = dashboard.post(f"/payments/{paid['id']}/refunds", {**too_much, "amount": bad, "confirm": "yes"})
        assert answer.status_code == 400, bad
        assert "Enter an amount more than zero" in text_of(answer.text) or "At most $353.90" in text_of(answer.text)
    stale = dashboard.post(f"/payments/{paid['id']}/refunds", {**too_much, "token": "x", "confirm": "yes"})
    assert stale.status_code == 400

    # An offline payment: in the books only; all that is left when no amount is given.
    page = dashboard.get(f"/payments/{check['id']}").text
    assert "Recorded offline: refunded in the books only" in text_of(page)
    whole = {"amount": "", "reason": "Overpaid", "token": _token_of(page)}
    assert "Refund $10.00 of payment" in text_of(dashboard.post(f"/payments/{check['id']}/refunds", whole).text)
    assert dashboard.post(f"/payments/{check['id']}/refunds", {**whole, "confirm": "yes"}).status_code == 303
    assert api.get(f"/api/v1/payments/{check['id']}").json()["amount_refunded"] == 1000
    assert 'action="/payments/' not in dashboard.get(f"/payments/{check['id']}").text  # nothing left to refund
    _books_add_up(world)
    assert dashboard.get("/payments/999999").status_code == 404


def test_the_payments_list_pages(world: World) -> None:
    for day in range(1, 28):
        run(
            factories.payment(
                world.store,
                world.acme.id,
                1234,
                now=world.clock.now,
                amount=100 + day,
                received_on=f"2026-10-{day:02d}",
            )
        )
    dashboard = admin_of_acme(world)
    page = dashboard.get("/payments").text
    first = text_of(page)
    assert "Oct 27, 2026" in first
    assert "Oct 2, 2026" not in first
    older = re.search(r'href="(/payments\?before=\d+)" rel="next"', page)  # keyset paging: newest first
    assert older is not None
    second = dashboard.get(older[1]).text
    assert "Oct 2, 2026" in text_of(second)
    assert "Oct 1, 2026" in text_of(second)
    assert 'rel="next"' not in second
    assert dashboard.get("/payments?before=abc&kind=nonsense").status_code == 200
