"""How customers' details and documents' states read on pages and in PDFs."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from babel import Locale

from billportal.core import countries, i18n
from billportal.core.clock import human_month
from billportal.core.i18n import N_
from billportal.services.statements import Month, StatementLine
from billportal.storage.records import CreditNote, Customer, Estimate

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def address_lines(customer: Customer) -> list[str]:
    """The customer's name and postal address, one line each, empty parts left out."""
    place = " ".join(part for part in (customer.state, customer.postal_code) if part)
    city_line = ", ".join(part for part in (customer.city, place) if part)
    country = local_country_name(customer.country) or customer.country
    lines = [customer.name, customer.address_line1, customer.address_line2, city_line, country]
    return [line for line in lines if line]


# A document's state as the customer reads it (invoices, credit notes, estimates, payments, refunds).
_STATUSES: Final = {
    "draft": N_("Draft"),
    "open": N_("Open"),
    "paid": N_("Paid"),
    "past_due": N_("Past due"),
    "voided": N_("Voided"),
    "applied": N_("Applied"),
    "unused_credit": N_("Unused credit"),
    "sent": N_("Sent"),
    "awaiting_approval": N_("Awaiting approval"),
    "expired": N_("Expired"),
    "approved": N_("Approved"),
    "declined": N_("Declined"),
    "pending": N_("Pending"),
    "succeeded": N_("Succeeded"),
    "failed": N_("Failed"),
    "payment": N_("Payment"),
    "credit_note": N_("Credit note"),
    "invoice": N_("Invoice"),
}
_METHODS: Final = {
    "ach": N_("ACH"),
    "bank_transfer": N_("Bank transfer"),
    "card": N_("Card"),
    "cash": N_("Cash"),
    "check": N_("Check"),
    "other": N_("Other"),
}


local_country_name = countries.local_name


@lru_cache(maxsize=16)
def _local_countries(code: str) -> tuple[tuple[str, str], ...]:
    names = dict(Locale.parse(code).territories)
    found = [(alpha2, names.get(alpha2, english)) for alpha2, english in countries.countries()]
    return tuple(sorted(found, key=lambda pair: pair[1].casefold()))


def local_countries() -> tuple[tuple[str, str], ...]:
    """Every country as (code, name) in the request's language, in the order of those names."""
    return _local_countries(i18n.current())


def status_label(status: str) -> str:
    """``past_due`` reads "Past due" (in the request's language)."""
    known = _STATUSES.get(status)
    return i18n.gettext(known) if known else status.replace("_", " ").capitalize()


def method_label(method: str, detail: str = "") -> str:
    """How a payment method reads: a payment taken online names its card ("Visa ending 4242")."""
    if detail:
        return detail
    known = _METHODS.get(method)
    return i18n.gettext(known) if known else method.replace("_", " ").capitalize()


def aging_label(bucket: str) -> str:
    """An aging bucket of the open-items statement: "Current", "1-30 days past due", "Over 90 days past due"."""
    if bucket == "current":
        return i18n.gettext("Current")
    if bucket.startswith("over "):
        return i18n.gettext("Over %(days)s days past due") % {"days": bucket.removeprefix("over ")}
    return i18n.gettext("%(days)s days past due") % {"days": bucket}


_DEVICE_PARTS: Final = {"Unknown browser": N_("Unknown browser"), "unknown system": N_("unknown system")}


def device_label(device: str) -> str:
    """A stored ``"Firefox on Windows"`` in the customer's language (browsers and systems are names)."""
    browser, on, system = device.rpartition(" on ")
    if not on:
        return device
    browser, system = (
        i18n.gettext(_DEVICE_PARTS[part]) if part in _DEVICE_PARTS else part for part in (browser, system)
    )
    return i18n.gettext("%(browser)s on %(system)s") % {"browser": browser, "system": system}


def line_description(line: StatementLine) -> str:
    """What a line of the balance-forward statement is."""
    if line.kind == "invoice":
        return i18n.gettext("Invoice")
    if line.kind == "refund":
        return i18n.gettext("Refund of payment")
    if line.kind == "credit_note":
        return i18n.gettext("Credit note")
    if line.description.startswith("Payment (") and line.description.endswith(")"):
        method = line.description.removeprefix("Payment (").removesuffix(")")
        known = {english: i18n.gettext(english) for english in _METHODS.values()}
        return i18n.gettext("Payment (%(method)s)") % {"method": known.get(method, method)}
    return i18n.gettext("Payment")


def month_name(month: Month) -> str:
    """A statement's month in the request's language: "December 2026", "Dezember 2026"."""
    text = human_month(month.year, month.month)
    return text[:1].upper() + text[1:]


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
