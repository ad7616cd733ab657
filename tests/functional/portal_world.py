"""Billing documents on top of the shared ``world``: payments, credit notes and estimates.

Acme's customer 1234 gets a month of history before November 2026 and a busy
November; Acme's 1235 and Globex's 1234 get one document of each kind, so that
every authorization test has another customer's document to ask for.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape

from starlette.testclient import TestClient

from billportal.storage.records import LineInput
from tests.conftest import GLOBEX_KEY, World, run

# 2026-11-28 12:00 UTC: the documents below are dated around it.
NOW = int(datetime(2026, 11, 28, 12, tzinfo=UTC).timestamp())
INVOICE_TOTAL = 35890  # each invoice of the shared world: 2 x 125.00 + 99.00 + 9.90 tax


@dataclass(frozen=True)
class Docs:
    """Ids of the documents made, by owner."""

    invoices: dict[str, int]  # number -> id, every company
    payments: dict[str, int]
    credit_notes: dict[str, int]
    estimates: dict[str, int]


def add_documents(world: World) -> Docs:
    """Set the clock to NOW and add the documents (idempotent per world)."""
    world.clock.now = NOW
    store, billing = world.store, world.store.billing
    acme, globex = world.acme.id, world.globex.id

    async def make() -> Docs:
        invoices: dict[str, int] = {}
        for company_id, customer_id in ((acme, 1234), (acme, 1235), (globex, 1234)):
            rows, _ = await store.invoices(company_id, customer_id)
            invoices.update({invoice.number: invoice.id for invoice in rows})
        invoices["INV-0009"] = await store.create_invoice(
            acme,
            1234,
            number="INV-0009",
            currency="USD",
            status="open",
            issued_on="2026-10-05",
            due_on="2026-11-04",
            lines=[LineInput("Dehydrated boulders", "3", 3999, discount=999)],
            now=NOW,
        )
        payments = {
            "PAY-0999": await billing.create_payment(
                acme,
                1234,
                number="PAY-0999",
                currency="USD",
                received_on="2026-10-20",
                method="check",
                amount=10998,
                applications=[(invoices["INV-0009"], 10998)],
                now=NOW,
            ),
            "PAY-1001": await billing.create_payment(
                acme,
                1234,
                number="PAY-1001",
                currency="USD",
                received_on="2026-11-10",
                method="card",
                amount=10000,
                applications=[(invoices["INV-0001"], 10000)],
                reference="ch_123",
                now=NOW,
            ),
            "PAY-1002": await billing.create_payment(
                acme,
                1234,
                number="PAY-1002",
                currency="USD",
                received_on="2026-11-12",
                method="ach",
                amount=20000,
                applications=[(invoices["INV-0002"], 15000)],
                now=NOW,
            ),
            "PAY-2001": await billing.create_payment(
                acme,
                1235,
                number="PAY-2001",
                currency="USD",
                received_on="2026-11-11",
                method="bank_transfer",
                amount=5000,
                applications=[(invoices["INV-0003"], 5000)],
                now=NOW,
            ),
            "GLX-PAY-1": await billing.create_payment(
                globex,
                1234,
                number="GLX-PAY-1",
                currency="USD",
                received_on="2026-11-11",
                method="card",
                amount=5000,
                applications=[(invoices["GLX-0001"], 5000)],
                now=NOW,
            ),
        }
        credit_notes = {
            "CN-1": await billing.create_credit_note(
                acme,
                1234,
                number="CN-1",
                currency="USD",
                issued_on="2026-11-15",
                lines=[LineInput("Returned giant magnet", "1", 9900)],
                invoice_id=invoices["INV-0001"],
                now=NOW,
            ),
            "CN-2": await billing.create_credit_note(
                acme,
                1234,
                number="CN-2",
                currency="USD",
                issued_on="2026-11-16",
                lines=[LineInput("Goodwill credit", "1", 2500)],
                now=NOW,
            ),
            "CN-3": await billing.create_credit_note(
                acme,
                1235,
                number="CN-3",
                currency="USD",
                issued_on="2026-11-16",
                lines=[LineInput("Goodwill credit", "1", 1000)],
                now=NOW,
            ),
            "GLX-CN-1": await billing.create_credit_note(
                globex,
                1234,
                number="GLX-CN-1",
                currency="USD",
                issued_on="2026-11-16",
                lines=[LineInput("Goodwill credit", "1", 1000)],
                now=NOW,
            ),
        }
        estimate_lines = [LineInput("Portable hole", "2", 49900, tax=4990)]
        estimates = {}
        for company_id, customer_id, number, issued, expires in (
            (acme, 1234, "EST-1", "2026-11-20", "2026-12-31"),
            (acme, 1234, "EST-2", "2026-10-01", "2026-11-01"),
            (acme, 1235, "EST-3", "2026-11-20", "2026-12-31"),
            (globex, 1234, "GLX-EST-1", "2026-11-20", "2026-12-31"),
        ):
            estimates[number] = await billing.create_estimate(
                company_id,
                customer_id,
                number=number,
                currency="USD",
                issued_on=issued,
                expires_on=expires,
                lines=estimate_lines,
                now=NOW,
            )
        return Docs(invoices, payments, credit_notes, estimates)

    return run(make())


def signed_in(world: World, company: str = "acme", customer_id: int = 1234) -> TestClient:
    """A client of ``company``'s portal with ``customer_id`` signed in."""
    client = world.client(company)
    key = GLOBEX_KEY if company == "globex" else None
    claims = {"sub": customer_id, "iss": "Ruby Backend", "exp": world.clock.now + 3600}
    token = world.token(claims, key) if key else world.token(claims)
    assert client.get(f"/login/{token}").status_code == 303
    return client


def csrf_token(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def text_of(html: str) -> str:
    """The visible text of a page, tags dropped and space squeezed, for asserting on what people read."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def pdf_text(content: bytes) -> str:
    """The text drawn in a PDF made with a built-in font (its content streams are deflated)."""
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", content, re.DOTALL):
        try:
            chunks.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            chunks.append(stream.decode("latin-1"))
    return "".join("".join(re.findall(r"\((.*?)\)\s*Tj", chunk)) + " " for chunk in chunks)
