"""Customer statements: the balance-forward ledger and the open items, for one month.

Both are computed from one :class:`Ledger` (a customer's documents up to the
statement date, in one currency), so they can never disagree:

* balance forward: opening balance + invoices - payments + refunds - credits = closing balance;
* open items: every invoice still owed and every credit not yet used, as of the
  statement date; they add up to the same closing balance.

Invoices count from their issue date, payments from the day they were received,
credit notes from their issue date, refunds from the day they were made (money given back
of a payment is owed again). Drafts and voided documents do not count.
Every change of an invoice's balance is a payment or a credit note on record
(services/billing.py writes no other), so the statement always ends at the
balance the customer is shown elsewhere.
"""

from __future__ import annotations

import calendar
import operator
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Final

from billportal.storage.records import Ledger, LedgerCreditNote

AGING_BUCKETS: Final = ("current", "1-30", "31-60", "61-90", "over 90")
MAX_MONTHS_OFFERED: Final = 120  # ten years in the month chooser; an older month can still be asked for by URL
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
class StatementMonths:
    """The months a customer is offered a statement for (newest first), and the one shown when none is asked."""

    offered: tuple[Month, ...]
    default: Month


def statement_months(today: str, since: str, first_activity: str | None, last_activity: str | None) -> StatementMonths:
    """From the customer's first month (created ``since``, or earlier documents) to the current one.

    The default is the last complete month, or the current one once it has activity: on the
    1st, a statement of the month just closed rather than an empty one.
    """
    current = Month.of(today)
    first = Month.of(min(since, first_activity) if first_activity else since)
    active_now = last_activity is not None and last_activity >= current.first_day
    default = current if active_now or first >= current else current.previous()
    return StatementMonths(_months_back(current, first), default)


@lru_cache(maxsize=1024)  # the same few spans, page after page
def _months_back(current: Month, first: Month) -> tuple[Month, ...]:
    offered = [current]
    while offered[-1] > first and len(offered) < MAX_MONTHS_OFFERED:
        offered.append(offered[-1].previous())
    return tuple(offered)


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


# -- balance forward -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of activity; ``charge`` adds to what is owed, ``credit`` takes away."""

    on: str
    kind: str  # invoice, payment, refund (of payment document_id), credit_note
    document_id: int
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
    refunded: int = 0


_KIND_ORDER = {"invoice": 0, "payment": 1, "refund": 2, "credit_note": 3}
_METHODS = {
    "ach": "ACH",
    "bank_transfer": "Bank transfer",
    "card": "Card",
    "cash": "Cash",
    "check": "Check",
    "other": "Other",
}


def method_label(method: str, detail: str = "") -> str:
    """How a payment method reads to a customer: a payment taken online names its card ("Visa ending 4242")."""
    return detail or _METHODS.get(method, method.replace("_", " ").capitalize())


# An entry before it is a line: (on, kind's order, number, kind, document id, description or payment method,
# charge, credit). Plain tuples: a statement walks the customer's whole history for its opening balance, and
# only the month's entries become StatementLines.
_Entry = tuple[str, int, str, str, int, str, int, int]
_BY_DATE_KIND_NUMBER = operator.itemgetter(0, 1, 2)


def _entries(ledger: Ledger, until: str) -> list[_Entry]:
    """Every ledger entry dated up to ``until``, oldest first (ties in the ledger's order)."""
    order = _KIND_ORDER
    entries: list[_Entry] = [
        (i.issued_on, order["invoice"], i.number, "invoice", i.id, "Invoice", i.total, 0)
        for i in ledger.invoices
        if i.issued_on <= until
    ]
    entries += [
        (p.received_on, order["payment"], p.number, "payment", p.id, p.method, 0, p.amount)
        for p in ledger.payments
        if p.received_on <= until
    ]
    entries += [
        (r.refunded_on, order["refund"], r.payment_number, "refund", r.payment_id, "Refund of payment", r.amount, 0)
        for r in ledger.refunds
        if r.refunded_on <= until
    ]
    entries += [
        (n.issued_on, order["credit_note"], n.number, "credit_note", n.id, "Credit note", 0, n.total)
        for n in ledger.credit_notes
        if n.issued_on <= until
    ]
    entries.sort(key=_BY_DATE_KIND_NUMBER)
    return entries


def balance_forward(ledger: Ledger, month: Month, until: str) -> BalanceForwardStatement:
    """Opening balance, the month's activity up to ``until``, and the closing balance."""
    start = month.first_day
    end = min(month.last_day, until)
    opening = running = ledger.opening
    lines: list[StatementLine] = []
    for on, _order, number, kind, document_id, said, charge, credit in _entries(ledger, end):
        running += charge - credit
        if on < start:
            opening = running
        else:
            description = f"Payment ({method_label(said)})" if kind == "payment" else said
            lines.append(StatementLine(on, kind, document_id, number, description, charge, credit, running))
    invoiced = sum(line.charge for line in lines)
    paid = sum(line.credit for line in lines if line.kind == "payment")
    credited = sum(line.credit for line in lines if line.kind == "credit_note")
    refunded = sum(line.charge for line in lines if line.kind == "refund")
    invoiced -= refunded
    return BalanceForwardStatement(
        month=month,
        period_start=start,
        period_end=end,
        currency=ledger.currency,
        opening=opening,
        invoiced=invoiced,
        paid=paid,
        credited=credited,
        closing=opening + invoiced - paid + refunded - credited,
        lines=tuple(lines),
        refunded=refunded,
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


def _applied_as_of(ledger: Ledger, as_of: str) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
    """What each payment had applied to each invoice on ``as_of``, and what each had refunded by then.

    The applications read are as they are now, after every refund: a refund made after ``as_of``
    gives back what it took from invoices, which was still applied on that day.
    """
    applied = {(a.payment_id, a.invoice_id): a.amount for a in ledger.applications}
    refunded: dict[int, int] = {}
    for refund in ledger.refunds:
        if refund.refunded_on <= as_of:
            refunded[refund.payment_id] = refunded.get(refund.payment_id, 0) + refund.amount
            continue
        for invoice_id, amount in refund.invoices:
            key = (refund.payment_id, invoice_id)
            applied[key] = applied.get(key, 0) + amount
    return applied, refunded


def open_items(ledger: Ledger, month: Month, until: str) -> OpenItemStatement:
    """What was owed and what credit was unused at the end of ``month`` (or ``until``, if earlier)."""
    as_of = min(month.last_day, until)
    as_of_day = date.fromisoformat(as_of)
    in_range = {invoice.id: invoice for invoice in ledger.invoices if invoice.issued_on <= as_of}
    payments = {payment.id: payment for payment in ledger.payments if payment.received_on <= as_of}

    owed = {invoice_id: invoice.total for invoice_id, invoice in in_range.items()}
    unapplied = {payment_id: payment.amount for payment_id, payment in payments.items()}
    applied, refunded = _applied_as_of(ledger, as_of)
    for payment_id, amount in refunded.items():
        if payment_id in payments:
            unapplied[payment_id] -= amount
    for (payment_id, invoice_id), amount in applied.items():
        if payment_id in payments and invoice_id in in_range:
            owed[invoice_id] -= amount
            unapplied[payment_id] -= amount
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
