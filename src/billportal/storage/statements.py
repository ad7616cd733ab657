"""Customer statements: the balance-forward ledger and the open items, for one month.

Both are computed from one :class:`Ledger` (a customer's documents up to the
statement date, in one currency), so they can never disagree:

* balance forward: opening balance + invoices - payments - credits = closing balance;
* open items: every invoice still owed and every credit not yet used, as of the
  statement date; they add up to the same closing balance.

Invoices count from their issue date, payments from the day they were received,
credit notes from their issue date. Drafts and voided documents do not count.
An invoice whose stored balance says more was settled than its recorded payments
and credit notes explain (for example one imported as already paid) gets a
settlement line for the difference on its issue date, so the statement always
ends at the balance the customer is shown elsewhere.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from typing import Final

from sqlalchemy import Connection, select

from billportal.storage import schema as t

INVOICE_STATUSES: Final = ("open", "paid")
CREDIT_NOTE_STATUSES: Final = ("open", "applied")
AGING_BUCKETS: Final = ("current", "1-30", "31-60", "61-90", "over 90")
_MONTH = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})")


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month, as ``YYYY-MM`` in URLs."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``Month.parse("2026-11")``; ValueError for anything else."""
        match = _MONTH.fullmatch(text.strip())
        if match is None:
            raise ValueError("not a month")
        year, month = int(match["year"]), int(match["month"])
        if not (1 <= month <= 12 and year >= 1970):
            raise ValueError("not a month")
        return cls(year, month)

    @classmethod
    def of(cls, iso_date: str) -> Month:
        day = date.fromisoformat(iso_date)
        return cls(day.year, day.month)

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> str:
        return f"{self.key}-01"

    @property
    def last_day(self) -> str:
        return f"{self.key}-{calendar.monthrange(self.year, self.month)[1]:02d}"

    @property
    def label(self) -> str:
        return f"{calendar.month_name[self.month]} {self.year}"

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """The balance due now: open invoice balances less unused credit (credit notes, unapplied payments)."""

    owed: int
    past_due: int
    unused_credit: int

    @property
    def due(self) -> int:
        return self.owed - self.unused_credit


# -- the raw documents ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerInvoice:
    id: int
    number: str
    issued_on: str
    due_on: str | None
    total: int
    balance: int  # today's stored balance


@dataclass(frozen=True, slots=True)
class LedgerPayment:
    id: int
    number: str
    received_on: str
    method: str
    amount: int


@dataclass(frozen=True, slots=True)
class LedgerApplication:
    payment_id: int
    invoice_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class LedgerCreditNote:
    id: int
    number: str
    issued_on: str
    invoice_id: int | None
    total: int


@dataclass(frozen=True, slots=True)
class Ledger:
    """A customer's documents in one currency, issued up to some date."""

    currency: str
    invoices: tuple[LedgerInvoice, ...]
    payments: tuple[LedgerPayment, ...]
    applications: tuple[LedgerApplication, ...]
    credit_notes: tuple[LedgerCreditNote, ...]


def load_ledger(conn: Connection, company_id: int, customer_id: int, currency: str, until: str) -> Ledger:
    """The documents a statement up to ``until`` needs (four indexed queries).

    Applications and credit notes of invoices in range are read whatever their
    date: an invoice's settlement line needs everything applied to it so far.
    """
    inv, pay, app, cn = t.invoices.c, t.payments.c, t.payment_applications.c, t.credit_notes.c
    invoice_rows = conn.execute(
        select(inv.id, inv.number, inv.issued_on, inv.due_on, inv.total, inv.balance).where(
            inv.company_id == company_id,
            inv.customer_id == customer_id,
            inv.currency == currency,
            inv.status.in_(INVOICE_STATUSES),
            inv.issued_on <= until,
        )
    ).all()
    payment_rows = conn.execute(
        select(pay.id, pay.number, pay.received_on, pay.method, pay.amount).where(
            pay.company_id == company_id, pay.customer_id == customer_id, pay.currency == currency
        )
    ).all()
    application_rows = conn.execute(
        select(app.payment_id, app.invoice_id, app.amount)
        .join(t.payments, pay.id == app.payment_id)
        .where(pay.company_id == company_id, pay.customer_id == customer_id, pay.currency == currency)
    ).all()
    credit_rows = conn.execute(
        select(cn.id, cn.number, cn.issued_on, cn.invoice_id, cn.total).where(
            cn.company_id == company_id,
            cn.customer_id == customer_id,
            cn.currency == currency,
            cn.status.in_(CREDIT_NOTE_STATUSES),
        )
    ).all()
    return Ledger(
        currency=currency,
        invoices=tuple(LedgerInvoice(*row) for row in invoice_rows),
        payments=tuple(LedgerPayment(*row) for row in payment_rows),
        applications=tuple(LedgerApplication(*row) for row in application_rows),
        credit_notes=tuple(LedgerCreditNote(*row) for row in credit_rows),
    )


def _settled_elsewhere(ledger: Ledger) -> dict[int, int]:
    """Per invoice: what its balance says was settled beyond its recorded payments and credits."""
    explained: dict[int, int] = defaultdict(int)
    for application in ledger.applications:
        explained[application.invoice_id] += application.amount
    for note in ledger.credit_notes:
        if note.invoice_id is not None:
            explained[note.invoice_id] += note.total
    return {
        invoice.id: gap
        for invoice in ledger.invoices
        if (gap := invoice.total - invoice.balance - explained[invoice.id]) != 0
    }


# -- balance forward -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of activity; ``charge`` adds to what is owed, ``credit`` takes away."""

    on: str
    kind: str  # invoice, payment, credit_note, settlement
    document_id: int | None
    number: str
    description: str
    charge: int
    credit: int
    balance: int  # running balance after this line


@dataclass(frozen=True, slots=True)
class BalanceForwardStatement:
    month: Month
    period_start: str
    period_end: str
    currency: str
    opening: int
    invoiced: int
    paid: int
    credited: int
    closing: int
    lines: tuple[StatementLine, ...]


_KIND_ORDER = {"invoice": 0, "settlement": 1, "payment": 2, "credit_note": 3}
_METHODS = {
    "ach": "ACH",
    "bank_transfer": "Bank transfer",
    "card": "Card",
    "cash": "Cash",
    "check": "Check",
    "other": "Other",
}


def method_label(method: str) -> str:
    """How a payment method reads to a customer."""
    return _METHODS.get(method, method.replace("_", " ").capitalize())


def _entries(ledger: Ledger, until: str) -> list[StatementLine]:
    """Every ledger entry dated up to ``until``, oldest first; balances not yet filled in."""
    invoices = {invoice.id: invoice for invoice in ledger.invoices if invoice.issued_on <= until}
    entries = [
        StatementLine(invoice.issued_on, "invoice", invoice.id, invoice.number, "Invoice", invoice.total, 0, 0)
        for invoice in invoices.values()
    ]
    for invoice_id, amount in _settled_elsewhere(ledger).items():
        if invoice_id in invoices:
            invoice = invoices[invoice_id]
            entries.append(
                StatementLine(
                    invoice.issued_on, "settlement", None, invoice.number, "Settled on the invoice", 0, amount, 0
                )
            )
    for payment in ledger.payments:
        if payment.received_on <= until:
            description = f"Payment ({method_label(payment.method)})"
            entries.append(
                StatementLine(
                    payment.received_on, "payment", payment.id, payment.number, description, 0, payment.amount, 0
                )
            )
    entries.extend(
        StatementLine(note.issued_on, "credit_note", note.id, note.number, "Credit note", 0, note.total, 0)
        for note in ledger.credit_notes
        if note.issued_on <= until
    )
    entries.sort(key=lambda e: (e.on, _KIND_ORDER[e.kind], e.number))
    return entries


def balance_forward(ledger: Ledger, month: Month, until: str) -> BalanceForwardStatement:
    """Opening balance, the month's activity up to ``until``, and the closing balance."""
    start = month.first_day
    end = min(month.last_day, until)
    opening = 0
    lines: list[StatementLine] = []
    running = 0
    for entry in _entries(ledger, end):
        running += entry.charge - entry.credit
        if entry.on < start:
            opening = running
        else:
            lines.append(replace(entry, balance=running))
    invoiced = sum(line.charge for line in lines)
    paid = sum(line.credit for line in lines if line.kind in ("payment", "settlement"))
    credited = sum(line.credit for line in lines if line.kind == "credit_note")
    return BalanceForwardStatement(
        month=month,
        period_start=start,
        period_end=end,
        currency=ledger.currency,
        opening=opening,
        invoiced=invoiced,
        paid=paid,
        credited=credited,
        closing=opening + invoiced - paid - credited,
        lines=tuple(lines),
    )


# -- open items --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenItem:
    """An invoice still owed (positive) or a credit not yet used (negative), on the statement date."""

    kind: str  # invoice, payment, credit_note
    document_id: int
    number: str
    on: str
    due_on: str | None
    total: int
    outstanding: int
    days_past_due: int

    @property
    def aging(self) -> str:
        """The aging bucket by days past due on the statement date."""
        if self.kind != "invoice" or self.days_past_due <= 0:
            return AGING_BUCKETS[0]
        if self.days_past_due <= 30:
            return AGING_BUCKETS[1]
        if self.days_past_due <= 60:
            return AGING_BUCKETS[2]
        if self.days_past_due <= 90:
            return AGING_BUCKETS[3]
        return AGING_BUCKETS[4]


@dataclass(frozen=True, slots=True)
class OpenItemStatement:
    """Invoices still owed less credit not yet used: ``owed - unused_credit = total``."""

    month: Month
    as_of: str
    currency: str
    invoices: tuple[OpenItem, ...]
    credits: tuple[OpenItem, ...]
    owed: int
    unused_credit: int
    total: int
    aging: tuple[tuple[str, int], ...]  # what the invoices owe, by AGING_BUCKETS

    @property
    def items(self) -> tuple[OpenItem, ...]:
        return self.invoices + self.credits


def open_items(ledger: Ledger, month: Month, until: str) -> OpenItemStatement:
    """What was owed and what credit was unused at the end of ``month`` (or ``until``, if earlier)."""
    as_of = min(month.last_day, until)
    as_of_day = date.fromisoformat(as_of)
    in_range = {invoice.id: invoice for invoice in ledger.invoices if invoice.issued_on <= as_of}
    settled = _settled_elsewhere(ledger)
    payments = {payment.id: payment for payment in ledger.payments if payment.received_on <= as_of}

    owed = {invoice_id: invoice.total - settled.get(invoice_id, 0) for invoice_id, invoice in in_range.items()}
    unapplied = {payment_id: payment.amount for payment_id, payment in payments.items()}
    for application in ledger.applications:
        if application.payment_id in payments and application.invoice_id in in_range:
            owed[application.invoice_id] -= application.amount
            unapplied[application.payment_id] -= application.amount
    unused_notes: list[LedgerCreditNote] = []
    for note in ledger.credit_notes:
        if note.issued_on > as_of:
            continue
        if note.invoice_id in in_range:
            owed[note.invoice_id] -= note.total
        else:
            unused_notes.append(note)

    invoices: list[OpenItem] = []
    for invoice_id, amount in owed.items():
        if amount:
            invoice = in_range[invoice_id]
            late = (as_of_day - date.fromisoformat(invoice.due_on)).days if invoice.due_on else 0
            invoices.append(
                OpenItem(
                    "invoice",
                    invoice_id,
                    invoice.number,
                    invoice.issued_on,
                    invoice.due_on,
                    invoice.total,
                    amount,
                    late,
                )
            )
    unused = [
        OpenItem(
            "payment",
            payment_id,
            payments[payment_id].number,
            payments[payment_id].received_on,
            None,
            payments[payment_id].amount,
            -amount,
            0,
        )
        for payment_id, amount in unapplied.items()
        if amount
    ]
    unused += [
        OpenItem("credit_note", note.id, note.number, note.issued_on, None, note.total, -note.total, 0)
        for note in unused_notes
        if note.total
    ]
    invoices.sort(key=lambda item: (item.on, item.number))
    unused.sort(key=lambda item: (item.on, item.number))
    aging = dict.fromkeys(AGING_BUCKETS, 0)
    for item in invoices:
        aging[item.aging] += item.outstanding
    owed_total = sum(item.outstanding for item in invoices)
    unused_credit = -sum(item.outstanding for item in unused)
    return OpenItemStatement(
        month=month,
        as_of=as_of,
        currency=ledger.currency,
        invoices=tuple(invoices),
        credits=tuple(unused),
        owed=owed_total,
        unused_credit=unused_credit,
        total=owed_total - unused_credit,
        aging=tuple(aging.items()),
    )
