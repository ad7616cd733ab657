"""Every portal page, over HTTP on the real app and a real SQLite file, as a signed-in customer."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
from sqlalchemy import Engine, event
from starlette.testclient import TestClient

from billportal.services.billing import LineInput
from billportal.sso.pages import PAGE_PATHS, SEED_PAGE_IDS
from billportal.storage.documents import Scope
from tests import factories
from tests.conftest import World, run
from tests.functional.portal_world import (
    INVOICE_TOTAL,
    NOW,
    Docs,
    add_documents,
    csrf_token,
    hidden_fields,
    pdf_text,
    signed_in,
    text_of,
)


@pytest.fixture
def docs(world: World) -> Docs:
    return add_documents(world)


@pytest.fixture
def client(world: World, docs: Docs) -> TestClient:
    return signed_in(world)


PAGES = [
    "/",
    "/invoices",
    "/payments",
    "/credit-notes",
    "/estimates",
    "/statements/balance-forward",
    "/statements/open-item",
    "/billing-info",
    "/pay",
    "/payment-methods",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_private_strict_and_accessible(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    csp = response.headers["content-security-policy"]
    assert "script-src" not in csp  # default-src 'none': no script at all
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    html = response.text
    assert "<script" not in html
    assert " style=" not in html
    assert re.search(r"https?://(?!acme\.localhost)", html) is None  # no third-party resource
    assert html.count("<h1") == 1
    assert 'lang="en"' in html
    assert "Acme Corporation" in html
    assert 'href="/theme.css"' in html
    for field in re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html):
        assert f'for="{field}"' in html, f"{path}: #{field} has no label"
    assert 'aria-current="page"' in html


@pytest.mark.parametrize("page_id", SEED_PAGE_IDS)
def test_each_page_id_lands_on_its_page(world: World, docs: Docs, page_id: str) -> None:
    client = world.client()
    response = client.get(f"/login/{world.token()}", params={"redirect_to": page_id})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == PAGE_PATHS[page_id]
    page = client.get(location)
    assert page.status_code == 200
    assert "Wile E. Coyote" in page.text


def test_add_payment_method_opens_the_saved_cards_page(world: World, docs: Docs) -> None:
    client = world.client()
    response = client.get(f"/login/{world.token()}", params={"redirect_to": "add_payment_method"})
    assert response.headers["location"] == "/payment-methods"
    assert "<h1>Saved cards</h1>" in client.get("/payment-methods").text


# -- My Account -----------------------------------------------------------------------------


def test_my_account_shows_contact_balance_invoices_and_payments(client: TestClient, docs: Docs) -> None:
    page = text_of(client.get("/").text)
    assert "Welcome, Wile E. Coyote" in page
    assert "wile@example.com" in page
    # INV-0001: 358.90 - 100.00 paid - 99.00 credited; INV-0002: 358.90 - 150.00.
    owed = (INVOICE_TOTAL - 10000 - 9900) + (INVOICE_TOTAL - 15000)
    unused = 2500 + 5000  # CN-2 and what PAY-1002 did not apply
    assert f"Open invoices (2) ${owed / 100:,.2f}" in page
    assert f"Unused credit -${unused / 100:,.2f}" in page
    assert f"Balance due ${(owed - unused) / 100:,.2f}" in page
    assert "INV-0001" in page
    assert "INV-0002" in page
    assert "INV-0009" not in page  # paid
    assert "INV-0003" not in page  # another customer's
    assert "PAY-1002" in page
    assert "PAY-2001" not in page


def test_my_account_shows_past_due_invoices(world: World, docs: Docs) -> None:
    world.clock.now += 5 * 86400  # 2026-12-03: both open invoices are past due
    page = text_of(signed_in(world).get("/").text)
    assert page.count("Past due") >= 2
    assert "of which past due" in page


# -- invoices -----------------------------------------------------------------------------


def test_invoice_filters_search_and_pagination(world: World, docs: Docs, client: TestClient) -> None:
    assert "INV-0009" in client.get("/invoices?status=paid").text
    assert "INV-0001" not in client.get("/invoices?status=paid").text
    open_page = client.get("/invoices?status=open").text
    assert "INV-0001" in open_page
    assert "INV-0009" not in open_page
    assert "INV-0001" not in client.get("/invoices?status=past_due").text
    world.clock.now += 5 * 86400
    client = signed_in(world)
    assert "INV-0001" in client.get("/invoices?status=past_due").text
    found = client.get("/invoices", params={"q": "0002"}).text
    assert "INV-0002" in found
    assert "INV-0001" not in found
    assert "No invoices match" in client.get("/invoices", params={"q": "%_\\"}).text
    # Unknown filters and pages fall back instead of failing.
    assert client.get("/invoices?status=bogus&page=-3").status_code == 200

    async def many() -> None:
        for n in range(30):
            await factories.invoice(
                world.store,
                world.acme.id,
                1234,
                number=f"BULK-{n:03d}",
                issued_on="2026-09-01",
                due_on="2026-10-01",
                lines=[LineInput("Bird seed", "1", 2999)],
                now=world.clock.now,
            )

    run(many())
    first = client.get("/invoices").text
    assert "Page 1 of 2" in first
    assert "33 invoices" in first
    assert 'href="?status=all&amp;q=&amp;page=2"' in first
    second = client.get("/invoices?status=all&q=&page=2").text
    assert "Page 2 of 2" in second
    assert second.count('href="/invoices/') == 8


def test_invoice_detail_lines_totals_and_what_was_applied(client: TestClient, docs: Docs) -> None:
    response = client.get(f"/invoices/{docs.invoices['INV-0001']}")
    page = text_of(response.text)
    assert "Invoice INV-0001" in page
    assert "Rocket skates 2 $125.00 $250.00" in page
    assert "Giant magnet 1 $99.00 $9.90 $108.90" in page
    assert "Subtotal $349.00" in page
    assert "Tax $9.90" in page
    assert "Total $358.90" in page
    assert "Paid -$100.00" in page
    assert "Credited -$99.00" in page
    assert "Balance due $159.90" in page
    assert "Payment PAY-1001 Card $100.00" in page
    assert "Credit note CN-1 Credit $99.00" in page
    assert f'href="/invoices/{docs.invoices["INV-0001"]}/pdf?locale=en"' in response.text


def test_invoice_pdf_is_a_pdf_of_that_invoice(client: TestClient, docs: Docs) -> None:
    response = client.get(f"/invoices/{docs.invoices['INV-0001']}/pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == 'attachment; filename="invoice-INV-0001.pdf"'
    assert response.content.startswith(b"%PDF-")
    assert b"/Title (Invoice INV-0001)" in response.content
    text = pdf_text(response.content)
    for expected in ("Acme Corporation", "Wile E. Coyote", "INV-0001", "Rocket skates", "$159.90", "PAY-1001", "CN-1"):
        assert expected in text


@pytest.mark.parametrize(
    ("kind", "path", "number", "filename"),
    [
        ("payments", "/payments/{id}/pdf", "PAY-1002", "receipt-PAY-1002.pdf"),
        ("credit_notes", "/credit-notes/{id}/pdf", "CN-1", "credit-note-CN-1.pdf"),
        ("estimates", "/estimates/{id}/pdf", "EST-1", "estimate-EST-1.pdf"),
    ],
)
def test_every_document_has_a_pdf(
    client: TestClient, docs: Docs, *, kind: str, path: str, number: str, filename: str
) -> None:
    document_id = getattr(docs, kind)[number]
    response = client.get(path.format(id=document_id))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert response.content.startswith(b"%PDF-")
    assert number in pdf_text(response.content)


def test_pdf_text_outside_latin_1_never_fails(world: World, client: TestClient, docs: Docs) -> None:
    run(
        world.billing.update_billing_info(world.acme.id, 1234, {"name": "Łukasz Żółć 山田 \u202e"}, now=world.clock.now)
    )
    response = client.get(f"/invoices/{docs.invoices['INV-0001']}/pdf")
    assert response.status_code == 200
    # Accents outside Windows-1252 are dropped, letters with no plain form become "?".
    assert "?ukasz Z\xf3?c ?? ?" in pdf_text(response.content)


# -- payments, credit notes, estimates ------------------------------------------------------


def test_payments_list_and_receipt(client: TestClient, docs: Docs) -> None:
    listing = text_of(client.get("/payments").text)
    assert "PAY-1002 Nov 12, 2026 ACH $200.00" in listing
    assert "PAY-0999" in listing
    assert "PAY-2001" not in listing
    receipt = text_of(client.get(f"/payments/{docs.payments['PAY-1002']}").text)
    assert "Payment receipt PAY-1002" in receipt
    assert "INV-0002 $150.00" in receipt
    assert "Kept as account credit $50.00" in receipt
    assert "Amount received $200.00" in receipt


def test_credit_notes_list_and_detail(client: TestClient, docs: Docs) -> None:
    listing = text_of(client.get("/credit-notes").text)
    assert "CN-1" in listing
    assert "CN-2 Nov 16, 2026 Unused credit $25.00" in listing
    assert "CN-3" not in listing
    applied = text_of(client.get(f"/credit-notes/{docs.credit_notes['CN-1']}").text)
    assert "Applied to Invoice INV-0001" in applied
    assert "Returned giant magnet 1 $99.00 $99.00" in applied
    assert "Total credit $99.00" in applied
    held = text_of(client.get(f"/credit-notes/{docs.credit_notes['CN-2']}").text)
    assert "lowers your balance due" in held


def test_estimates_list_and_detail(client: TestClient, docs: Docs) -> None:
    listing = text_of(client.get("/estimates").text)
    assert "EST-1 Nov 20, 2026 Dec 31, 2026 Awaiting approval $1,047.90" in listing
    assert "EST-2 Oct 1, 2026 Nov 1, 2026 Expired" in listing
    assert "EST-3" not in listing
    detail = client.get(f"/estimates/{docs.estimates['EST-1']}").text
    assert "Portable hole" in detail
    assert 'href="/estimates/{}/approve"'.format(docs.estimates["EST-1"]) in detail
    assert 'action="/estimates/{}/decline"'.format(docs.estimates["EST-1"]) in detail
    expired = client.get(f"/estimates/{docs.estimates['EST-2']}").text
    assert "/approve" not in expired
    assert "/decline" not in expired
    assert "expired on Nov 1, 2026" in text_of(expired)


def test_approving_an_estimate_records_who_and_when(world: World, client: TestClient, docs: Docs) -> None:
    estimate_id = docs.estimates["EST-1"]
    action = f"/estimates/{estimate_id}/approve"
    form = hidden_fields(client.get(action).text, action)
    response = client.post(action, data={**form, "approved_by": "  Wile  E. Coyote "})
    assert response.status_code == 303
    assert response.headers["location"] == f"/estimates/{estimate_id}"
    after = text_of(client.get(f"/estimates/{estimate_id}").text)
    assert "Approved by Wile E. Coyote on Nov 28, 2026, 12:00 UTC" in after
    estimate = run(world.billing.get("estimate", Scope(world.acme.id, 1234), estimate_id))
    assert estimate is not None
    assert (estimate.status, estimate.approved_by, estimate.approved_at) == ("approved", "Wile E. Coyote", NOW)
    (event,) = run(world.billing.customer_events(world.acme.id, customer_id=1234))
    assert event.kind == "estimate.approved"
    again = client.post(action, data={**form, "approved_by": "X"})
    assert again.status_code == 409
    assert "can no longer be approved" in again.text


def test_approval_needs_a_name_and_the_csrf_token(world: World, client: TestClient, docs: Docs) -> None:
    estimate_id = docs.estimates["EST-1"]
    token = csrf_token(client.get(f"/estimates/{estimate_id}").text)
    forged = client.post(f"/estimates/{estimate_id}/approve", data={"csrf_token": "forged", "approved_by": "Wile"})
    assert forged.status_code == 403
    missing = client.post(f"/estimates/{estimate_id}/approve", data={"approved_by": "Wile"})
    assert missing.status_code == 403
    blank = client.post(f"/estimates/{estimate_id}/approve", data={"csrf_token": token, "approved_by": "   "})
    assert blank.status_code == 400
    assert 'aria-invalid="true"' in blank.text
    assert 'id="approved_by-error">Enter your full name.</p>' in blank.text
    expired = client.post(
        f"/estimates/{docs.estimates['EST-2']}/approve", data={"csrf_token": token, "approved_by": "Wile"}
    )
    assert expired.status_code == 409
    for estimate in run(world.billing.documents("estimate", Scope(world.acme.id, 1234)))[0]:
        assert estimate.status == "sent"
    assert run(world.billing.customer_events(world.acme.id)) == []


# -- statements -----------------------------------------------------------------------------


def test_balance_forward_statement_adds_up_on_screen(client: TestClient) -> None:
    page = text_of(client.get("/statements/balance-forward").text)
    assert "Statement for November 2026" in page
    # October: INV-0009 for 109.98, paid by PAY-0999. November: two invoices, three credits.
    assert "Opening balance $0.00" in page
    assert "Invoices + $717.80" in page
    assert "Payments \u2212 $300.00" in page
    assert "Credit notes \u2212 $124.00" in page
    assert "Closing balance $293.80" in page
    october = text_of(client.get("/statements/balance-forward?month=2026-10").text)
    assert "Statement for October 2026" in october
    assert "Invoices + $109.98" in october
    assert "Closing balance $0.00" in october


def test_open_item_statement_lists_what_is_owed(client: TestClient) -> None:
    page = text_of(client.get("/statements/open-item").text)
    assert "Open items, November 2026" in page
    assert "INV-0001 Nov 1, 2026 Dec 1, 2026 $358.90 $159.90" in page
    assert "Payment PAY-1002 Nov 12, 2026 $50.00" in page
    assert "Credit note CN-2 Nov 16, 2026 $25.00" in page
    assert "Balance due $293.80" in page
    september = text_of(client.get("/statements/open-item?month=2026-09").text)
    assert "No open invoices" in september


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "Choose a month from the list."),
        ("November", "Choose a month from the list."),
        ("2027-01", "Statements can be made up to the current month."),
    ],
)
def test_a_bad_month_is_explained_beside_the_chooser(client: TestClient, month: str, message: str) -> None:
    for kind in ("balance-forward", "open-item"):
        response = client.get(f"/statements/{kind}", params={"month": month})
        assert response.status_code == 400
        assert f'id="month-error">{message}</p>' in response.text
        assert client.get(f"/statements/{kind}/pdf", params={"month": month}).status_code == 400


def _months_offered(html: str) -> list[str]:
    return re.findall(r'<option value="(\d{4}-\d{2})"', html)


def test_the_current_month_follows_the_companys_time_zone(world: World, docs: Docs) -> None:
    # 2026-12-01 03:00 UTC is still November 30 in Denver.
    world.clock.now = int(datetime(2026, 12, 1, 3, tzinfo=UTC).timestamp())
    client = signed_in(world)
    run(factories.company_settings(world.store, world.acme, time_zone="America/Denver"))
    world.store.forget_company("acme")
    assert _months_offered(client.get("/statements/balance-forward").text)[0] == "2026-11"
    run(factories.company_settings(world.store, world.acme, time_zone="UTC"))
    world.store.forget_company("acme")
    assert _months_offered(client.get("/statements/balance-forward").text)[0] == "2026-12"


FIRST_OF_DECEMBER = int(datetime(2026, 12, 1, 9, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("kind", ["balance-forward", "open-item"])
def test_on_the_first_the_statement_is_of_the_month_just_closed(world: World, docs: Docs, kind: str) -> None:
    world.clock.now = FIRST_OF_DECEMBER
    client = signed_in(world)
    page = client.get(f"/statements/{kind}").text
    assert re.search(r'<option value="2026-11" selected>', page)
    if kind == "balance-forward":
        text = text_of(page)
        assert "Statement for November 2026" in text
        assert "Invoices + $717.80" in text
        assert "No activity this month" not in text
    # December can still be asked for, and the PDF follows the same default.
    assert "Statement for December 2026" in client.get("/statements/balance-forward?month=2026-12").text
    pdf = client.get(f"/statements/{kind}/pdf")
    assert pdf.headers["content-disposition"] == f'attachment; filename="statement-{kind}-2026-11.pdf"'


def test_the_current_month_is_the_default_once_it_has_activity(world: World, docs: Docs) -> None:
    world.clock.now = FIRST_OF_DECEMBER
    run(
        factories.payment(
            world.store, world.acme.id, 1234, amount=1000, received_on="2026-12-01", now=FIRST_OF_DECEMBER
        )
    )
    page = signed_in(world).get("/statements/balance-forward").text
    assert "Statement for December 2026" in page
    assert "Payments \u2212 $10.00" in text_of(page)


def test_the_month_list_starts_at_the_customers_first_month(world: World, docs: Docs) -> None:
    world.clock.now = FIRST_OF_DECEMBER
    # Acme's 1234 has documents from October 2026 on (INV-0009, issued 2026-10-05).
    offered = _months_offered(signed_in(world).get("/statements/open-item").text)
    assert offered == ["2026-12", "2026-11", "2026-10"]
    # A customer created today with no documents: only this month, and it is the default.
    run(factories.customer(world.store, world.acme.id, id=4321, name="New Customer", now=FIRST_OF_DECEMBER))
    page = signed_in(world, customer_id=4321).get("/statements/balance-forward").text
    assert _months_offered(page) == ["2026-12"]
    assert "Statement for December 2026" in page
    # An older month asked for by URL is still shown, and offered beside the others.
    older = signed_in(world, customer_id=4321).get("/statements/balance-forward?month=2026-06").text
    assert "Statement for June 2026" in older
    assert _months_offered(older) == ["2026-12", "2026-06"]


@pytest.mark.parametrize(("kind", "title"), [("balance-forward", "Balance forward"), ("open-item", "Open items")])
def test_statement_pdfs(client: TestClient, kind: str, title: str) -> None:
    response = client.get(f"/statements/{kind}/pdf?month=2026-11")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'attachment; filename="statement-{kind}-2026-11.pdf"'
    text = pdf_text(response.content)
    assert f"{title}, November 2026" in text
    assert "$293.80" in text


# -- pay --------------------------------------------------------------------------------------


def test_pay_shows_the_balance_its_parts_and_the_instructions(world: World, client: TestClient) -> None:
    run(
        factories.company_settings(
            world.store, world.acme, payment_instructions="Bank: First Desert Bank\nIBAN: US00 1234"
        )
    )
    world.store.forget_company("acme")
    page = client.get("/pay").text
    text = text_of(page)
    assert "Balance due $293.80" in text
    assert "INV-0001" in text
    assert "INV-0002" in text
    assert "CN-2" in text
    assert "Bank: First Desert Bank\nIBAN: US00 1234" in page


def test_pay_without_instructions_says_whom_to_ask(client: TestClient) -> None:
    text = text_of(client.get("/pay").text)
    assert "Please contact Acme Corporation for how to pay, and quote your customer number" in text
    assert "Your customer number CUST-01234" in text


def test_pay_asks_once_for_the_customer_number(world: World, client: TestClient) -> None:
    # The demo's instructions ask for the customer number in the company's own words.
    instructions = "Pay by bank transfer.\nPlease quote your customer number and the invoice numbers you are paying."
    run(factories.company_settings(world.store, world.acme, payment_instructions=instructions))
    world.store.forget_company("acme")
    text = text_of(client.get("/pay").text).casefold()
    assert text.count("quote your customer number") == 1
    assert "your customer number cust-01234" in text  # the number itself is still given


# -- billing details ----------------------------------------------------------------------


def _billing_form(page: str, **changes: str) -> dict[str, str]:
    """The billing details form as the page fills it in (inputs' values, selects' chosen options), then ``changes``."""
    fields = dict(re.findall(r'<input id="[a-z_0-9]+" name="([a-z_0-9]+)"[^>]* value="([^"]*)"', page))
    selects = re.findall(r'<select id="[a-z_0-9]+" name="([a-z_0-9]+)"[^>]*>(.*?)</select>', page, re.DOTALL)
    for name, options in selects:
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        fields[name] = chosen.group(1) if chosen else ""
    fields = {name: unescape(value) for name, value in fields.items()}
    fields["csrf_token"] = csrf_token(page)
    fields.update(changes)
    return fields


# A whole, valid address for the billing details form.
MESA_ROAD = {
    "name": "Wile E. Coyote",
    "address_line1": "1 Mesa Road",
    "city": "Albuquerque",
    "state": "NM",
    "postal_code": "87101",
    "country": "us",
    "phone": "+1 (505) 555-0134",
}


def test_billing_details_are_saved_and_the_company_sees_the_change(world: World, client: TestClient) -> None:
    page = client.get("/billing-info").text
    form = _billing_form(page, **MESA_ROAD)
    response = client.post("/billing-info", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/billing-info?saved=1"
    saved = client.get("/billing-info?saved=1").text
    assert "Your billing details were saved." in saved
    assert 'value="1 Mesa Road"' in saved
    customer = run(world.billing.customer(world.acme.id, 1234))
    assert customer is not None
    assert (customer.address_line1, customer.city, customer.country) == ("1 Mesa Road", "Albuquerque", "US")
    assert "1 Mesa Road" in client.get("/").text
    (event,) = run(world.billing.customer_events(world.acme.id, customer_id=1234))
    assert event.kind == "billing_info.updated"
    assert "address_line1" in event.detail


def test_country_is_chosen_from_iso_3166_and_the_state_from_its_subdivisions(world: World, client: TestClient) -> None:
    page = client.get("/billing-info").text
    assert re.search(r'<select id="country" name="country"[^>]*>', page)
    assert '<option value="DE">Germany</option>' in page
    assert '<option value="XX"' not in page
    base = {"name": "Wile", "address_line1": "1 Mesa Road", "city": "Albuquerque"}
    # The state may be written as its code, its ISO code or its name: it is kept as the code.
    for spelling in ("NM", "us-nm", "new mexico"):
        form = _billing_form(client.get("/billing-info").text, **base, country="US", state=spelling)
        assert client.post("/billing-info", data=form).status_code == 303
        customer = run(world.billing.customer(world.acme.id, 1234))
        assert customer is not None
        assert (customer.country, customer.state) == ("US", "NM")
    # The country's subdivisions are offered as a list, with the saved one chosen.
    saved = client.get("/billing-info").text
    assert re.search(r'<select id="state" name="state"[^>]*>', saved)
    assert '<option value="NM" selected>New Mexico</option>' in saved
    assert "The list is for United States." in text_of(saved)
    assert "Albuquerque, NM United States" in text_of(client.get("/").text)  # the country by its name
    # Another country: its own list once saved; a country ISO 3166-2 knows nothing of keeps a text field.
    form = _billing_form(saved, country="CA", state="")
    assert client.post("/billing-info", data=form).status_code == 303
    canada = client.get("/billing-info").text
    assert '<option value="ON">Ontario</option>' in canada
    assert '<option value="NM"' not in canada
    form = _billing_form(canada, country="AQ", state="Ross Dependency", tax_id="de 123456789")
    assert client.post("/billing-info", data=form).status_code == 303
    antarctica = client.get("/billing-info").text
    assert re.search(r'<input id="state" name="state"[^>]* value="Ross Dependency"', antarctica)
    customer = run(world.billing.customer(world.acme.id, 1234))
    assert customer is not None
    assert (customer.country, customer.state, customer.tax_id) == ("AQ", "Ross Dependency", "DE 123456789")
    assert re.search(r'<input id="tax_id" name="tax_id"[^>]* value="DE 123456789"', antarctica)
    assert "Tax or VAT id DE 123456789" in text_of(client.get("/").text)
    assert "tax id DE 123456789" in text_of(client.get("/statements/open-item").text)
    invoices, _ = run(world.billing.invoices(Scope(world.acme.id, 1234)))
    assert "Tax id DE 123456789" in pdf_text(client.get(f"/invoices/{invoices[0].id}/pdf").content)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "Enter billing name."),
        ({"email": "not-an-email"}, "email", "Enter an email address such as name@example.com."),
        ({"phone": "call me"}, "phone", "Enter a phone number in digits"),
        ({"address_line1": ""}, "address_line1", "Enter address line 1."),
        ({"city": "x" * 101}, "city", "City can be at most 100 characters."),
        ({"country": "USA"}, "country", "Choose your country from the list."),
        ({"country": "XX"}, "country", "Choose your country from the list."),
        ({"country": ""}, "country", "Enter country."),
        ({"state": "Ontario"}, "state", "Choose a state or province of United States from the list."),
        ({"country": "CA", "state": "NM"}, "state", "Choose a state or province of Canada from the list."),
        ({"tax_id": "DE 123; DROP"}, "tax_id", "Enter the tax id in letters and digits"),
        ({"tax_id": "D" * 65}, "tax_id", "Tax or VAT id can be at most 64 characters."),
        ({"postal_code": "<b>"}, "postal_code", "Enter the postal code"),
        ({"address_line2": "evil\u202ename"}, "address_line2", "contains characters that cannot be saved"),
        ({"state": "a\x00b"}, "state", "contains characters that cannot be saved"),
    ],
)
def test_billing_details_are_checked_field_by_field(
    world: World, client: TestClient, changes: dict[str, str], field: str, message: str
) -> None:
    base = {"name": "Wile", "address_line1": "1 Mesa Road", "city": "Albuquerque", "country": "US"}
    form = _billing_form(client.get("/billing-info").text, **{**base, **changes})
    response = client.post("/billing-info", data=form)
    assert response.status_code == 400
    html = response.text
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert error is not None
    assert message in unescape(error.group(1))
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*{field}-error', html)
    assert f'href="#{field}"' in html  # the summary links to the field
    # What was typed is kept, escaped; nothing was saved.
    if field == "postal_code":
        assert 'value="&lt;b&gt;"' in html
    assert run(world.billing.customer_events(world.acme.id)) == []
    customer = run(world.billing.customer(world.acme.id, 1234))
    assert customer is not None
    assert customer.name == "Wile E. Coyote"


def test_billing_details_need_the_csrf_token(world: World, client: TestClient) -> None:
    form = _billing_form(client.get("/billing-info").text, csrf_token="forged", city="Nowhere")
    response = client.post("/billing-info", data=form)
    assert response.status_code == 403
    assert run(world.billing.customer_events(world.acme.id)) == []


def test_a_form_too_large_or_not_a_form_is_refused_plainly(client: TestClient) -> None:
    token = csrf_token(client.get("/billing-info").text)
    huge = client.post("/billing-info", data={"csrf_token": token, "name": "x" * 20_000})
    assert huge.status_code == 413
    multipart = client.post("/billing-info", files={"name": ("a.txt", b"x")}, data={"csrf_token": token})
    assert multipart.status_code == 400
    bad_bytes = client.post(
        "/billing-info",
        content=f"csrf_token={token}&name=%ff%fe".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert bad_bytes.status_code == 400
    for response in (huge, multipart, bad_bytes):
        assert "text/html" in response.headers["content-type"]
        assert token not in response.text


# -- theme --------------------------------------------------------------------------------------


def test_theme_uses_the_company_accent_and_stays_readable(world: World, client: TestClient) -> None:
    run(factories.company_settings(world.store, world.acme, accent_color="#FDE047"))  # a light yellow
    world.store.forget_company("acme")
    css = client.get("/theme.css").text
    assert "--accent: #fde047;" in css
    assert "--on-accent: #111827;" in css
    ink = re.search(r"--accent-ink: (#[0-9a-f]{6})", css)
    assert ink is not None
    assert ink.group(1) != "#fde047"
    run(factories.company_settings(world.store, world.acme, accent_color="red;}*{"))
    world.store.forget_company("acme")
    assert "--accent: #2563eb;" in client.get("/theme.css").text


# -- queries ------------------------------------------------------------------------------------


def _statements_for(client: TestClient, path: str) -> int:
    seen: list[str] = []

    def count(*args: Any) -> None:
        sql = str(args[2])
        verb = sql.lstrip().split(None, 1)[0].upper()
        # The page's own queries: not BEGIN or COMMIT, nor the company and session
        # lookups every page shares (their caches expire by the clock).
        if verb in ("SELECT", "INSERT", "UPDATE", "DELETE") and not re.search(
            r"\b(companies|sso_keys|sessions)\b", sql
        ):
            seen.append(verb)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return len(seen)


@pytest.mark.parametrize("path", ["/", "/invoices", "/payments", "/invoices/1", "/pay"])
def test_pages_cost_the_same_few_queries_however_much_history(
    world: World, docs: Docs, client: TestClient, path: str
) -> None:
    before = _statements_for(client, path)
    # The customer, then up to four queries of the page; the pay page also reads the payment settings.
    assert before <= (6 if path == "/pay" else 5)

    async def more_history() -> None:
        for n in range(40):
            invoice = await factories.invoice(
                world.store,
                world.acme.id,
                1234,
                number=f"HIST-{n:03d}",
                issued_on="2026-08-01",
                due_on="2026-09-01",
                lines=[LineInput("Bird seed", "1", 2999), LineInput("Magnet", "2", 1000)],
                now=world.clock.now,
            )
            await factories.payment(
                world.store,
                world.acme.id,
                1234,
                number=f"HPAY-{n:03d}",
                received_on="2026-08-15",
                method="card",
                amount=2000,
                applications=[(invoice.id, 1000), (docs.invoices["INV-0001"], 10)],  # INV-0001 gets many payments
                now=world.clock.now,
            )

    run(more_history())
    assert _statements_for(client, path) == before


# -- on a phone ---------------------------------------------------------------------------------


def test_the_navigation_is_also_a_menu_that_opens_without_script(client: TestClient) -> None:
    html = client.get("/invoices").text
    compact = re.search(r'<details class="nav-compact">\s*<summary>Menu</summary>(.*?)</details>', html, re.DOTALL)
    assert compact is not None
    for href in ("/", "/invoices", "/payments", "/credit-notes", "/estimates", "/billing-info", "/pay"):
        assert f'href="{href}"' in compact.group(1)
    assert 'href="/invoices" aria-current="page"' in compact.group(1)


@pytest.mark.parametrize("host", ["acme", "dashboard"])
def test_the_favicon_is_served_on_every_host(world: World, host: str) -> None:
    response = world.client(host).get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/x-icon"
    assert response.content.startswith(b"\x00\x00\x01\x00")  # an ICO file
    assert "public" in response.headers["cache-control"]
