"""How customers' details and documents' states read on pages and in PDFs."""

from __future__ import annotations

import re

from billportal.core.countries import country_name
from billportal.storage.records import CreditNote, Customer, Estimate

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def address_lines(customer: Customer) -> list[str]:
    """The customer's name and postal address, one line each, empty parts left out."""
    place = " ".join(part for part in (customer.state, customer.postal_code) if part)
    city_line = ", ".join(part for part in (customer.city, place) if part)
    country = country_name(customer.country) or customer.country
    lines = [customer.name, customer.address_line1, customer.address_line2, city_line, country]
    return [line for line in lines if line]


def status_label(status: str) -> str:
    """``past_due`` reads "Past due"."""
    return status.replace("_", " ").capitalize()


def estimate_state(estimate: Estimate, today: str) -> str:
    """What a customer needs to know of an estimate: awaiting approval, expired, approved..."""
    if estimate.status == "sent":
        expired = estimate.expires_on is not None and estimate.expires_on < today
        return "expired" if expired else "awaiting_approval"
    return estimate.status


def credit_note_state(note: CreditNote) -> str:
    """An open credit note is credit the customer has not used yet."""
    return "unused_credit" if note.status == "open" else note.status


def download_name(kind: str, number: str) -> str:
    """A safe file name for a PDF download: ``invoice-INV-1001.pdf``."""
    safe = _UNSAFE_FILENAME.sub("-", number).strip(".-")[:80] or "document"
    return f"{kind}-{safe}.pdf"
