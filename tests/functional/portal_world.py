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

from billportal.services.billing import Billing, LineInput
from billportal.storage.documents import Scope
from tests import factories
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
    store = world.store
    acme, globex = world.acme.id, world.globex.id

    async def make() -> Docs:
        billing = Billing(store)
        invoices: dict[str, int] = {}
        for company_id, customer_id in ((acme, 1234), (acme, 1235), (globex, 1234)):
            rows, _ = await billing.invoices(Scope(company_id, customer_id))
            invoices.update({invoice.number: invoice.id for invoice in rows})
        boulders = [LineInput("Dehydrated boulders", "3", 3999, discount=999)]
        invoices["INV-0009"] = (
            await factories.invoice(
                store,
                acme,
                1234,
                number="INV-0009",
                issued_on="2026-10-05",
                due_on="2026-11-04",
                lines=boulders,
                now=NOW,
            )
        ).id
        payments = {}
        for company_id, customer_id, number, received, method, amount, invoice, applied, extra in (
            (acme, 1234, "PAY-0999", "2026-10-20", "check", 10998, "INV-0009", 10998, {}),
            (acme, 1234, "PAY-1001", "2026-11-10", "card", 10000, "INV-0001", 10000, {"reference": "ch_123"}),
            (acme, 1234, "PAY-1002", "2026-11-12", "ach", 20000, "INV-0002", 15000, {}),
            (acme, 1235, "PAY-2001", "2026-11-11", "bank_transfer", 5000, "INV-0003", 5000, {}),
            (globex, 1234, "GLX-PAY-1", "2026-11-11", "card", 5000, "GLX-0001", 5000, {}),
        ):
            made = await factories.payment(
                store,
                company_id,
                customer_id,
                number=number,
                received_on=received,
                method=method,
                amount=amount,
                applications=[(invoices[invoice], applied)],
                now=NOW,
                **extra,
            )
            payments[number] = made.id
        credit_notes = {}
        for company_id, customer_id, number, issued, line, applied_to in (
            (acme, 1234, "CN-1", "2026-11-15", LineInput("Returned giant magnet", "1", 9900), "INV-0001"),
            (acme, 1234, "CN-2", "2026-11-16", LineInput("Goodwill credit", "1", 2500), None),
            (acme, 1235, "CN-3", "2026-11-16", LineInput("Goodwill credit", "1", 1000), None),
            (globex, 1234, "GLX-CN-1", "2026-11-16", LineInput("Goodwill credit", "1", 1000), None),
        ):
            note = await factories.credit_note(
                store,
                company_id,
                customer_id,
                number=number,
                issued_on=issued,
                lines=[line],
                invoice_id=invoices[applied_to] if applied_to else None,
                now=NOW,
            )
            credit_notes[number] = note.id
        estimate_lines = [LineInput("Portable hole", "2", 49900, tax=4990)]
        estimates = {}
        for company_id, customer_id, number, issued, expires in (
            (acme, 1234, "EST-1", "2026-11-20", "2026-12-31"),
            (acme, 1234, "EST-2", "2026-10-01", "2026-11-01"),
            (acme, 1235, "EST-3", "2026-11-20", "2026-12-31"),
            (globex, 1234, "GLX-EST-1", "2026-11-20", "2026-12-31"),
        ):
            made_estimate = await factories.estimate(
                store,
                company_id,
                customer_id,
                number=number,
                issued_on=issued,
                expires_on=expires,
                lines=estimate_lines,
                now=NOW,
            )
            estimates[number] = made_estimate.id
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


def hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form that posts to ``action`` (its CSRF token, an estimate's version...)."""
    match = re.search(rf'<form[^>]*action="{re.escape(action)}"(.*?)</form>', html, re.DOTALL)
    assert match is not None, f"no form posts to {action}"
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match.group(1))
    return {name: unescape(value) for name, value in found}


def text_of(html: str) -> str:
    """The visible text of a page, tags dropped and space squeezed, for asserting on what people read."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


_STREAM = re.compile(rb"(?<!end)stream\r?\n")


def pdf_streams(content: bytes) -> list[bytes]:
    """A PDF's streams, each inflated where it is deflated (fpdf2 deflates them).

    Each is inflated up to the end of its own deflated data: cutting at the next
    ``endstream`` instead would fail on a stream whose last byte happens to be a CR.
    """
    streams = []
    for match in _STREAM.finditer(content):
        inflate = zlib.decompressobj()
        try:
            data = inflate.decompress(content[match.end() :])
        except zlib.error:
            data = b""
        if not inflate.eof:  # not deflated: up to the keyword
            data = content[match.end() : content.find(b"endstream", match.end())].rstrip(b"\r\n")
        streams.append(data)
    return streams


def pdf_text(content: bytes) -> str:
    """The text drawn in a PDF made with a built-in font."""
    chunks = [stream.decode("latin-1") for stream in pdf_streams(content)]
    return "".join("".join(re.findall(r"\((.*?)\)\s*Tj", chunk)) + " " for chunk in chunks)
