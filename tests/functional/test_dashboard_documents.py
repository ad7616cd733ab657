"""Documents in the dashboard over HTTP: invoices, payments, credit notes and estimates.

Lists with filters and keyset paging, each document's page and PDF, the CSV exports (with the
sign-in log's formula guard), and every change through the one write model: the same messages
as the API, the same webhook events, an audit entry for each, and never a 500 for bad input.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from billportal.services.billing import estimate_version
from billportal.storage import webhooks as outbox
from billportal.storage.documents import Scope
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import Dashboard, admin_of_acme
from tests.functional.portal_world import NOW, add_documents, pdf_text, text_of
from tests.functional.test_api import dashboard as api_client
from tests.functional.test_api import new_key

BOULDERS = {"line1_description": "Dehydrated boulders", "line1_quantity": "2", "line1_unit_price": "39.99"}


@pytest.fixture
def admin(world: World) -> Dashboard:
    world.clock.now = NOW
    run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now))
    return admin_of_acme(world)


@pytest.fixture
def api(world: World) -> TestClient:
    return api_client(world, new_key(world))


def _events(world: World) -> list[tuple[str, dict[str, Any]]]:
    found = run(world.store.read(lambda conn: outbox.events(conn, world.acme.id)))
    return [(event_type, json.loads(payload)) for _, event_type, payload in found]


def _created_id(response: httpx.Response, path: str) -> int:
    assert response.status_code == 303, text_of(response.text)
    found = re.fullmatch(rf"{path}/(\d+)\?done=\w+", response.headers["location"])
    assert found, response.headers["location"]
    return int(found[1])


def _csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(response.text)))


def _numbers(html: str, path: str) -> list[str]:
    return re.findall(rf'<a href="{path}/\d+">([^<]+)</a>', html)


def _audit(admin: Dashboard) -> str:
    return text_of(admin.get("/audit").text)


# -- invoices ------------------------------------------------------------------------------------


def test_an_invoice_from_draft_to_paid(world: World, admin: Dashboard, api: TestClient) -> None:
    form = admin.get("/invoices/new")
    assert form.status_code == 200
    assert 'name="line10_description"' in form.text  # ten line rows, no JavaScript
    assert 'name="issued_on" type="date" value="2026-11-28"' in form.text  # today, in the company's zone
    draft = {
        "customer_id": "1234",
        "issued_on": "2026-11-28",
        "due_on": "2026-12-28",
        "notes": "Thank you!",
        "status": "draft",
        **BOULDERS,
        "line3_description": "Rocket skates",
        "line3_quantity": "1",
        "line3_unit_price": "100",
        "line3_discount": "10.00",
        "line3_tax": "7.20",
    }
    invoice_id = _created_id(admin.post("/invoices/new", draft), "/invoices")
    found = api.get(f"/api/v1/invoices/{invoice_id}").json()
    assert (found["status"], found["total"], len(found["lines"])) == ("draft", 7998 + 10000 - 1000 + 720, 2)
    assert found["lines"][1]["discount"] == 1000
    page = text_of(admin.get(f"/invoices/{invoice_id}?done=created").text)
    assert f"Invoice {found['number']} is saved." in page
    assert "Rocket skates" in page
    assert "Draft" in page

    issued = admin.post(f"/invoices/{invoice_id}/issue")
    assert issued.status_code == 303
    assert api.get(f"/api/v1/invoices/{invoice_id}").json()["status"] == "open"
    assert [t for t, _ in _events(world)] == ["invoice.created", "invoice.issued"]  # as the API path writes them

    # Edit: a line and the due date; the API reads the change.
    edit = admin.get(f"/invoices/{invoice_id}/edit").text
    assert 'name="line1_unit_price" value="39.99"' in edit
    changed = {**draft, "due_on": "2027-01-15", "line1_quantity": "3"}
    del changed["status"]
    assert admin.post(f"/invoices/{invoice_id}/edit", changed).status_code == 303
    after = api.get(f"/api/v1/invoices/{invoice_id}").json()
    assert (after["due_on"], after["lines"][0]["quantity"], after["total"]) == ("2027-01-15", "3", 11997 + 9720)
    assert admin.post(f"/invoices/{invoice_id}/edit", changed).headers["location"].endswith("done=unchanged")

    # The PDF, with the seller's name and the lines.
    pdf = admin.get(f"/invoices/{invoice_id}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    text = pdf_text(pdf.content)
    assert "Acme Corporation" in text
    assert after["number"] in text
    assert "Rocket skates" in text

    # Paid in full by a payment recorded from the invoice's page.
    record = admin.get(f"/payments/new?customer_id=1234&invoice_id={invoice_id}")
    assert f'name="apply_{invoice_id}" type="text" value="217.17"' in record.text
    paid = {
        "customer_id": "1234",
        "amount": "217.17",
        "received_on": "2026-11-28",
        "method": "check",
        "reference": "Check 1001",
        f"apply_{invoice_id}": "217.17",
    }
    payment_id = _created_id(admin.post("/payments/new", paid), "/payments")
    assert api.get(f"/api/v1/invoices/{invoice_id}").json()["status"] == "paid"
    assert "The payment is recorded." in text_of(admin.get(f"/payments/{payment_id}?done=recorded").text)
    assert "invoice.paid" in [t for t, _ in _events(world)]
    assert "payment.created" in [t for t, _ in _events(world)]

    # A paid invoice: voiding is refused with the API's message; its notes still change.
    refused = admin.post(f"/invoices/{invoice_id}/void", {"confirm": "yes"})
    assert refused.status_code == 409
    assert "a paid invoice cannot be voided (only open ones)" in text_of(refused.text)
    notes_form = admin.get(f"/invoices/{invoice_id}/edit").text
    assert "only its notes can change" in text_of(notes_form)
    assert 'name="line1_description"' not in notes_form
    assert admin.post(f"/invoices/{invoice_id}/edit", {"notes": "Paid, thanks"}).status_code == 303
    assert api.get(f"/api/v1/invoices/{invoice_id}").json()["notes"] == "Paid, thanks"

    trail = _audit(admin)
    for action in ("Document created", "Document issued", "Document changed", "Payment recorded"):
        assert action in trail
    assert "due_on: '2026-12-28' -> '2027-01-15'" in trail  # old and new values


def test_void_and_delete_ask_first(world: World, admin: Dashboard, api: TestClient) -> None:
    invoice = run(factories.invoice(world.store, world.acme.id, 1234, now=NOW))
    asked = admin.post(f"/invoices/{invoice.id}/void")
    assert asked.status_code == 200
    assert f"Void invoice {invoice.number}?" in text_of(asked.text)
    assert api.get(f"/api/v1/invoices/{invoice.id}").json()["status"] == "open"
    assert admin.post(f"/invoices/{invoice.id}/void", {"confirm": "yes"}).status_code == 303
    assert api.get(f"/api/v1/invoices/{invoice.id}").json()["status"] == "voided"
    assert "invoice.voided" in [t for t, _ in _events(world)]

    draft = run(factories.invoice(world.store, world.acme.id, 1234, status="draft", now=NOW))
    assert "Delete invoice" in text_of(admin.post(f"/invoices/{draft.id}/delete").text)
    deleted = admin.post(f"/invoices/{draft.id}/delete", {"confirm": "yes"})
    assert deleted.headers["location"] == "/invoices?deleted=1"
    assert "The invoice is deleted." in text_of(admin.get(deleted.headers["location"]).text)
    assert api.get(f"/api/v1/invoices/{draft.id}").status_code == 404
    refused = admin.post(f"/invoices/{invoice.id}/delete", {"confirm": "yes"})
    assert refused.status_code == 409
    assert "only drafts are deleted; void this invoice instead" in text_of(refused.text)
    assert "Document voided" in _audit(admin)
    assert "Document deleted" in _audit(admin)


def test_the_same_messages_as_the_api(admin: Dashboard, api: TestClient) -> None:
    """The form is checked by the API's shape and Books: every refusal in the API's words."""
    lines: list[dict[str, Any]] = [{"description": "Anvil", "quantity": "1", "unit_price": 100}]
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"issued_on": "2026-11-28", "due_on": "2026-11-01"}, {"due_on": "2026-11-01"}),
        ({"issued_on": "2026-11-28", "number": "INV-0001"}, {"number": "INV-0001"}),
        ({"issued_on": "2026-11-28", "currency": "usd"}, {"currency": "usd"}),
        ({"issued_on": "2026-11-28", "lines": [{**lines[0], "discount": 200}]}, {"line1_discount": "2.00"}),
        ({"issued_on": "2026-11-28", "customer_id": 999}, {"customer_id": "999"}),
        ({"issued_on": "2026-11-28", "lines": [{**lines[0], "quantity": "1.2.3"}]}, {"line1_quantity": "1.2.3"}),
        ({"issued_on": "2026-11-28", "lines": [{**lines[0], "description": " "}]}, {"line1_description": " "}),
        ({"issued_on": "2026-11-28", "notes": "a\x01b"}, {"notes": "a\x01b"}),
        ({"issued_on": "2026-11-28", "number": "x" * 65}, {"number": "x" * 65}),
        ({"issued_on": "2026-02-30"}, {"issued_on": "2026-02-30"}),
    ]
    for body, typed in cases:
        answer = api.post("/api/v1/invoices", json={"customer_id": 1234, "lines": lines, **body})
        assert answer.status_code in (400, 409, 422), answer.text
        message = answer.json()["error"]["message"]
        form = {"customer_id": "1234", "issued_on": "2026-11-28", "line1_description": "Anvil"}
        form |= {"line1_quantity": "1", "line1_unit_price": "1.00", **typed}
        page = admin.post("/invoices/new", form)
        assert page.status_code == 400, typed
        assert message in text_of(page.text), (message, typed)
        assert 'value="Anvil"' in page.text or typed.get("line1_description")  # what was typed is kept
    quantity = admin.post(
        "/invoices/new", {"customer_id": "1234", "issued_on": "2026-11-28", **BOULDERS, "line1_quantity": "1.2.3"}
    )
    assert quantity.status_code == 400
    assert 'lines[0].quantity must be a decimal number written as a string, such as "2" or "1.5"' in text_of(
        quantity.text
    )
    assert 'id="line1_quantity-error"' in quantity.text  # beside the row's field


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"customer_id": "abc"},
        {"customer_id": "9" * 40, **BOULDERS},
        {"customer_id": "1234"},  # no date, no lines
        {"customer_id": "1234", "issued_on": "2026-02-30", **BOULDERS},
        {"customer_id": "1234", "issued_on": "2026-11-28", "line1_description": "x", "line1_unit_price": "abc"},
        {"customer_id": "1234", "issued_on": "2026-11-28", "line1_description": "x", "line1_unit_price": "1e99"},
        {"customer_id": "1234", "issued_on": "2026-11-28", "line1_description": "x", "line1_unit_price": "-5"},
        {"customer_id": "1234", "issued_on": "2026-11-28", "line1_description": "x", "line1_unit_price": "NaN"},
        {"customer_id": "1234", "issued_on": "2026-11-28", **BOULDERS, "line1_unit_price": "99999999999999"},
        {"customer_id": "1234", "issued_on": "2026-11-28", **BOULDERS, "number": "x" * 65},
        {"customer_id": "1234", "issued_on": "2026-11-28", **BOULDERS, "notes": "a\x00b"},
        {"customer_id": "1234", "issued_on": "2026-11-28", **BOULDERS, "currency": "ZZZZ"},
        {"customer_id": "1234", "issued_on": "2026-11-28", **BOULDERS, "line1_quantity": "9" * 20},
    ],
)
def test_bad_invoice_forms_are_answered_never_a_500(admin: Dashboard, form: dict[str, str]) -> None:
    answer = admin.post("/invoices/new", form)
    assert answer.status_code == 400, text_of(answer.text)
    assert "Please correct what is marked below." in text_of(answer.text) or "error" in answer.text


def test_bad_paths_and_requests(world: World, admin: Dashboard) -> None:
    docs = add_documents(world)
    globex_invoice = docs.invoices["GLX-0001"]
    for path in (
        f"/invoices/{globex_invoice}",  # another company's
        f"/invoices/{globex_invoice}/pdf",
        f"/invoices/{globex_invoice}/edit",
        "/invoices/99999999999",
        "/credit-notes/0",
        f"/estimates/{docs.estimates['GLX-EST-1']}",
        f"/payments/{docs.payments['GLX-PAY-1']}/pdf",
        f"/payments/{docs.payments['GLX-PAY-1']}/edit",
    ):
        assert admin.get(path).status_code == 404, path
    for path in (f"/invoices/{globex_invoice}/void", f"/invoices/{globex_invoice}/issue", "/payments/0/delete"):
        assert admin.post(path, {"confirm": "yes"}).status_code == 404, path
    no_token = admin.client.post("/invoices/new", data={"customer_id": "1234"})
    assert no_token.status_code in (400, 403)
    for query in ("?customer=abc", "?from=2026-13-01", "?to=yesterday"):
        assert admin.get(f"/invoices{query}").status_code == 400, query
        assert admin.get(f"/invoices.csv{query}").status_code == 400, query
    assert admin.get("/invoices?before=abc&status=nonsense&overdue=maybe").status_code == 200
    assert admin.get(f"/invoices?before={'9' * 30}").status_code == 200
    assert admin.get("/invoices?q=%25_%00").status_code == 200
    issued = admin.post(f"/invoices/{docs.invoices['INV-0001']}/issue")
    assert issued.status_code == 409
    assert "This invoice is open already: only a draft is issued." in text_of(issued.text)


# -- lists, filters, paging and CSV ----------------------------------------------------------------


def test_invoice_list_filters_and_keyset_paging(world: World, admin: Dashboard) -> None:
    add_documents(world)
    late = run(factories.invoice(world.store, world.acme.id, 1234, number="LATE-1", due_on="2026-11-27", now=NOW))
    made = [
        run(
            factories.invoice(world.store, world.acme.id, 1235, number=f"BULK-{n:02d}", issued_on="2026-09-01", now=NOW)
        )
        for n in range(30)
    ]
    seen: list[str] = []
    url = "/invoices?customer=1235"
    while True:
        page = admin.get(url).text
        seen.extend(_numbers(page, "/invoices"))
        found = re.search(r'href="(/invoices\?[^"]*before=\d+[^"]*)" rel="next"', page)
        if found is None:
            break
        url = found[1].replace("&amp;", "&")
    assert seen[:30] == [i.number for i in reversed(made)]
    assert seen[30:] == ["INV-0003"]
    assert len(seen) == len(set(seen))

    acme = _numbers(admin.get("/invoices").text, "/invoices")
    assert "GLX-0001" not in acme  # Acme's only
    overdue = _numbers(admin.get("/invoices?overdue=1").text, "/invoices")
    assert overdue == [late.number]  # open, owed, and due before Nov 28
    assert "Past due" in text_of(admin.get("/invoices?overdue=1").text)
    dated = _numbers(admin.get("/invoices?from=2026-10-01&to=2026-10-31").text, "/invoices")
    assert dated == ["INV-0009"]
    assert _numbers(admin.get("/invoices?status=paid").text, "/invoices") == ["INV-0009"]
    assert _numbers(admin.get("/invoices?status=paid&customer=1235").text, "/invoices") == []
    assert _numbers(admin.get("/invoices?q=bulk-2").text, "/invoices")[0] == "BULK-29"


def test_every_list_exports_csv_with_the_formula_guard(world: World, admin: Dashboard, api: TestClient) -> None:
    docs = add_documents(world)
    invoice = run(factories.invoice(world.store, world.acme.id, 1234, notes='=HYPERLINK("http://evil")', now=NOW))
    run(
        factories.payment(
            world.store, world.acme.id, 1234, amount=500, reference="+1 555 0100", received_on="2026-11-27", now=NOW
        )
    )
    estimate = run(factories.estimate(world.store, world.acme.id, 1234, now=NOW))
    run(
        world.billing.approve_estimate(
            world.acme.id,
            1234,
            estimate.id,
            approved_by="@SUM(A1:A9)",
            version=estimate_version(estimate),
            now=NOW,
            valid_on=None,
        )
    )
    invoices = _csv(admin.get("/invoices.csv"))
    assert invoices[0][:4] == ["number", "id", "customer_id", "status"]
    row = next(r for r in invoices if r[0] == invoice.number)
    assert row[-1] == '\'=HYPERLINK("http://evil")'  # shown as text by a spreadsheet
    assert row[invoices[0].index("total")] == "358.90"
    assert "GLX-0001" not in {r[0] for r in invoices}

    payments = _csv(admin.get("/payments.csv?kind=offline"))
    assert "'+1 555 0100" in [r[payments[0].index("reference")] for r in payments]
    estimates = _csv(admin.get("/estimates.csv?status=approved"))
    assert [r[estimates[0].index("approved_by")] for r in estimates[1:]] == ["'@SUM(A1:A9)"]
    notes = _csv(admin.get("/credit-notes.csv?customer=1234"))
    assert {r[0] for r in notes[1:]} == {"CN-1", "CN-2"}
    assert docs.credit_notes


# -- credit notes, estimates, payments --------------------------------------------------------------


def test_a_credit_note_applied_to_an_invoice_then_voided(world: World, admin: Dashboard, api: TestClient) -> None:
    invoice = run(factories.invoice(world.store, world.acme.id, 1234, now=NOW))
    detail = admin.get(f"/invoices/{invoice.id}").text
    assert f"/credit-notes/new?customer_id=1234&amp;invoice_id={invoice.id}" in detail
    form = admin.get(f"/credit-notes/new?customer_id=1234&invoice_id={invoice.id}").text
    assert f'name="invoice_id" type="text" value="{invoice.id}"' in form
    credit = {
        "customer_id": "1234",
        "invoice_id": str(invoice.id),
        "issued_on": "2026-11-28",
        "status": "open",
        "line1_description": "Returned anvil",
        "line1_unit_price": "50.00",
    }
    note_id = _created_id(admin.post("/credit-notes/new", credit), "/credit-notes")
    note = api.get(f"/api/v1/credit_notes/{note_id}").json()
    assert (note["status"], note["total"]) == ("applied", 5000)
    assert api.get(f"/api/v1/invoices/{invoice.id}").json()["balance"] == 35890 - 5000
    page = text_of(admin.get(f"/credit-notes/{note_id}").text)
    assert f"Applied to Invoice {invoice.number}" in page
    assert "credit_note.created" in [t for t, _ in _events(world)]
    too_much = admin.post("/credit-notes/new", {**credit, "line1_unit_price": "1000.00"})
    assert too_much.status_code == 400
    assert "the credit must be more than 0 and at most the balance" in text_of(too_much.text)

    pdf = admin.get(f"/credit-notes/{note_id}/pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Returned anvil" in pdf_text(pdf.content)

    assert admin.post(f"/credit-notes/{note_id}/void", {"confirm": "yes"}).status_code == 303
    assert api.get(f"/api/v1/invoices/{invoice.id}").json()["balance"] == 35890
    assert _numbers(admin.get("/credit-notes?status=voided").text, "/credit-notes") == [note["number"]]


def test_an_estimate_sent_and_approved_shows_who_and_when(world: World, admin: Dashboard, api: TestClient) -> None:
    form = {
        "customer_id": "1234",
        "issued_on": "2026-11-28",
        "expires_on": "2026-12-31",
        "status": "draft",
        "line1_description": "Portable hole",
        "line1_unit_price": "499",
    }
    estimate_id = _created_id(admin.post("/estimates/new", form), "/estimates")
    assert admin.post(f"/estimates/{estimate_id}/issue").status_code == 303
    estimate = run(world.billing.get("estimate", Scope(world.acme.id), estimate_id))
    assert estimate.status == "sent"
    run(
        world.billing.approve_estimate(
            world.acme.id,
            1234,
            estimate_id,
            approved_by="Wile E. Coyote",
            version=estimate_version(estimate),
            now=NOW + 60,
            valid_on=None,
        )
    )
    page = text_of(admin.get(f"/estimates/{estimate_id}").text)
    assert "Approved by Wile E. Coyote" in page
    assert "Approved at Nov 28, 2026, 12:01 UTC" in page
    listed = text_of(admin.get("/estimates?status=approved").text)
    assert "Approved Wile E. Coyote, Nov 28, 2026, 12:01 UTC" in listed
    assert "only its notes can change" in text_of(admin.get(f"/estimates/{estimate_id}/edit").text)
    kept = admin.post(f"/estimates/{estimate_id}/edit", {**form, "line1_unit_price": "1", "notes": "Signed"})
    assert kept.status_code == 303  # an approved estimate: its notes only
    after = run(world.billing.get("estimate", Scope(world.acme.id), estimate_id))
    assert (after.notes, after.total) == ("Signed", 49900)
    pdf = pdf_text(admin.get(f"/estimates/{estimate_id}/pdf").content)
    assert "Wile E. Coyote" in pdf
    assert "estimate.approved" in [t for t, _ in _events(world)]


def test_recording_and_changing_a_payment(world: World, admin: Dashboard, api: TestClient) -> None:
    add_documents(world)
    start = admin.get("/payments/new")
    assert 'action="/payments/new"' in start.text
    assert "Show their open invoices" in start.text
    unknown = admin.get("/payments/new?customer_id=999")
    assert "Show their open invoices" in unknown.text  # no such customer: asked again
    as_credit = {"payer_id": "1235", "amount": "5", "received_on": "2026-11-28", "method": "cash"}
    credit_id = _created_id(admin.post("/payments/new", as_credit), "/payments")  # the form without invoices
    assert api.get(f"/api/v1/payments/{credit_id}").json()["unapplied"] == 500
    invoices = run(world.billing.invoices(Scope(world.acme.id, 1234), statuses=["open"]))[0]
    first = next(i for i in invoices if i.balance > 0)
    form = admin.get("/payments/new?customer_id=1234").text
    assert f'name="apply_{first.id}"' in form
    base = {"customer_id": "1234", "received_on": "2026-11-28", "method": "bank_transfer", "reference": "TR-1"}

    for bad, message in (
        ({"amount": "abc"}, "Enter an amount such as 12.50."),
        ({"amount": "0"}, "amount must be a whole number from 1 to"),
        ({"amount": "10", "method": "barter"}, "method must be one of"),
        ({"amount": "10", "received_on": "soon"}, "received_on must be a date written YYYY-MM-DD"),
        ({"amount": "10", f"apply_{first.id}": "20"}, "the applications add up to more than the payment"),
        ({"amount": "10", f"apply_{first.id}": "x"}, "Enter an amount such as 12.50."),
        ({"amount": "99999", f"apply_{first.id}": "99999"}, "more than the invoice's balance"),
        ({"amount": "10", "customer_id": "abc"}, "Enter the id of a customer of yours."),
    ):
        answer = admin.post("/payments/new", {**base, **bad})
        assert answer.status_code == 400, bad
        assert message in text_of(answer.text), (bad, text_of(answer.text))

    payment_id = _created_id(
        admin.post("/payments/new", {**base, "amount": "25.00", f"apply_{first.id}": "20"}), "/payments"
    )
    paid = api.get(f"/api/v1/payments/{payment_id}").json()
    assert (paid["amount"], paid["unapplied"], paid["applications"][0]["amount"]) == (2500, 500, 2000)
    listed = admin.get("/payments?kind=offline&customer=1234&from=2026-11-28").text
    assert _numbers(listed, "/payments") == [paid["number"]]
    assert paid["number"] not in _numbers(admin.get("/payments?kind=online").text, "/payments")

    edit = admin.get(f"/payments/{payment_id}/edit")
    assert 'value="TR-1"' in edit.text
    changed = {"number": paid["number"], "received_on": "2026-11-27", "method": "check", "reference": "Check 77"}
    assert admin.post(f"/payments/{payment_id}/edit", changed).status_code == 303
    assert api.get(f"/api/v1/payments/{payment_id}").json()["reference"] == "Check 77"
    wrong = admin.post(f"/payments/{payment_id}/edit", {**changed, "received_on": "2026-99-01"})
    assert wrong.status_code == 400
    assert "received_on must be a date written YYYY-MM-DD" in text_of(wrong.text)

    receipt = admin.get(f"/payments/{payment_id}/pdf")
    assert receipt.headers["content-type"] == "application/pdf"
    assert paid["number"] in pdf_text(receipt.content)

    assert "Delete payment" in text_of(admin.post(f"/payments/{payment_id}/delete").text)
    assert admin.post(f"/payments/{payment_id}/delete", {"confirm": "yes"}).status_code == 303
    assert api.get(f"/api/v1/payments/{payment_id}").status_code == 404
    assert api.get(f"/api/v1/invoices/{first.id}").json()["balance"] == first.balance


def test_the_menu_lists_every_kind(admin: Dashboard) -> None:
    for path, title in (("/invoices", "Invoices"), ("/credit-notes", "Credit notes"), ("/estimates", "Estimates")):
        page = admin.get(path)
        assert page.status_code == 200
        assert f'<a href="{path}" aria-current="page">{title}</a>' in page.text
        assert admin.get(f"{path}/new").status_code == 200
