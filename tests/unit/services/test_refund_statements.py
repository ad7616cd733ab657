"""Statements with refunds: the balance forward and the open items agree on any day, before or after a refund."""

from __future__ import annotations

from billportal.services.statements import Month, balance_forward, open_items
from billportal.storage.records import Ledger, LedgerApplication, LedgerInvoice, LedgerPayment, LedgerRefund

# An invoice of 100.00 paid by a payment of 150.00 (50.00 left as credit); on Dec 5 the payment is refunded
# 80.00: the 50.00 of credit first, then 30.00 taken back from the invoice (its application is 70.00 now).
LEDGER = Ledger(
    currency="USD",
    invoices=(LedgerInvoice(1, "INV-1", "2026-11-01", "2026-11-30", 10000),),
    payments=(LedgerPayment(1, "PAY-1", "2026-11-10", "check", 15000, 8000),),
    applications=(LedgerApplication(1, 1, 7000),),
    credit_notes=(),
    refunds=(LedgerRefund(1, 1, "PAY-1", "2026-12-05", 8000, ((1, 3000),)),),
)


def test_before_the_refund_the_payment_was_still_applied_and_its_credit_unused() -> None:
    november = Month(2026, 11)
    items = open_items(LEDGER, november, "2026-12-31")
    assert (items.owed, items.unused_credit, items.total) == (0, 5000, -5000)
    assert balance_forward(LEDGER, november, "2026-12-31").closing == items.total


def test_after_the_refund_the_invoice_is_owed_again_and_the_refund_is_a_line() -> None:
    december = Month(2026, 12)
    forward = balance_forward(LEDGER, december, "2026-12-31")
    assert (forward.opening, forward.invoiced, forward.paid, forward.refunded, forward.closing) == (
        -5000,
        0,
        0,
        8000,
        3000,
    )
    [line] = forward.lines
    assert (line.kind, line.number, line.description, line.charge, line.balance) == (
        "refund",
        "PAY-1",
        "Refund of payment",
        8000,
        3000,
    )
    items = open_items(LEDGER, december, "2026-12-31")
    assert (items.owed, items.unused_credit, items.total) == (3000, 0, 3000)
    assert [(item.number, item.outstanding) for item in items.invoices] == [("INV-1", 3000)]
