"""Statements add up: opening + invoices - payments - credits = closing = the open items = the balance due."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billportal.demo import seed
from billportal.services.billing import Billing, LineInput
from billportal.services.statements import (
    AGING_BUCKETS,
    MAX_MONTHS_OFFERED,
    Month,
    balance_forward,
    open_items,
    statement_months,
)
from billportal.storage.documents import Scope
from billportal.storage.records import Ledger, LedgerApplication, LedgerCreditNote, LedgerInvoice, LedgerPayment
from billportal.storage.store import Store
from tests import factories
from tests.conftest import World, run
from tests.functional.portal_world import add_documents

START = date(2026, 1, 1)


def day(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


@st.composite
def ledgers(draw: st.DrawFn) -> Ledger:
    """Any ledger at all: the identities must hold whatever the documents say."""
    amounts = st.integers(min_value=0, max_value=500_000)
    days = st.integers(min_value=0, max_value=200)
    invoices = tuple(
        LedgerInvoice(n + 1, f"INV-{n}", day(issued), day(issued + terms) if terms >= 0 else None, total)
        for n, (issued, terms, total) in enumerate(
            draw(st.lists(st.tuples(days, st.integers(-1, 60), amounts), max_size=12))
        )
    )
    payments = tuple(
        LedgerPayment(n + 1, f"PAY-{n}", day(received), "card", amount)
        for n, (received, amount) in enumerate(draw(st.lists(st.tuples(days, amounts), max_size=10)))
    )
    ids = st.integers(min_value=1, max_value=14)  # some name no invoice, as for a voided one
    applications = tuple(
        LedgerApplication(payment_id, invoice_id, amount)
        for payment_id, invoice_id, amount in draw(st.lists(st.tuples(ids, ids, amounts), max_size=12))
    )
    credit_notes = tuple(
        LedgerCreditNote(n + 1, f"CN-{n}", day(issued), invoice_id, total)
        for n, (issued, invoice_id, total) in enumerate(
            draw(st.lists(st.tuples(days, st.one_of(st.none(), ids), amounts), max_size=6))
        )
    )
    return Ledger("USD", invoices, payments, applications, credit_notes)


MONTHS = [Month(2025, 12), *(Month(2026, m) for m in range(1, 9))]


@settings(max_examples=300, deadline=None)
@given(ledger=ledgers())
def test_every_month_adds_up_and_agrees_with_its_open_items(ledger: Ledger) -> None:
    today = "2026-12-31"
    previous_closing = 0
    for month in MONTHS:
        statement = balance_forward(ledger, month, today)
        assert statement.opening + statement.invoiced - statement.paid - statement.credited == statement.closing
        assert statement.opening == previous_closing  # each month opens where the last one closed
        running = statement.opening
        for line in statement.lines:
            assert month.first_day <= line.on <= month.last_day
            running += line.charge - line.credit
            assert line.balance == running
        assert running == statement.closing
        items = open_items(ledger, month, today)
        assert items.total == statement.closing
        assert items.owed - items.unused_credit == items.total
        assert sum(amount for _, amount in items.aging) == items.owed
        assert [bucket for bucket, _ in items.aging] == list(AGING_BUCKETS)
        previous_closing = statement.closing


@settings(max_examples=100, deadline=None)
@given(ledger=ledgers(), cut=st.integers(min_value=0, max_value=200))
def test_the_current_month_stops_at_today(ledger: Ledger, cut: int) -> None:
    today = day(cut)
    month = Month.of(today)
    statement = balance_forward(ledger, month, today)
    assert statement.period_end == today
    assert all(line.on <= today for line in statement.lines)
    assert open_items(ledger, month, today).as_of == today
    assert open_items(ledger, month, today).total == statement.closing


def test_a_worked_example() -> None:
    ledger = Ledger(
        "USD",
        invoices=(
            LedgerInvoice(1, "INV-1", "2026-10-05", "2026-10-20", 10_000),
            LedgerInvoice(2, "INV-2", "2026-11-02", "2026-11-16", 20_000),
            LedgerInvoice(3, "INV-3", "2026-11-20", None, 5_000),
        ),
        payments=(
            LedgerPayment(1, "PAY-1", "2026-10-25", "check", 10_000),
            LedgerPayment(2, "PAY-2", "2026-11-10", "ach", 9_000),
            LedgerPayment(3, "PAY-3", "2026-11-20", "card", 5_000),  # paid on the day, in full
        ),
        applications=(LedgerApplication(1, 1, 10_000), LedgerApplication(2, 2, 6_000), LedgerApplication(3, 3, 5_000)),
        credit_notes=(
            LedgerCreditNote(1, "CN-1", "2026-11-12", 2, 2_000),
            LedgerCreditNote(2, "CN-2", "2026-11-13", None, 500),
        ),
    )
    november = balance_forward(ledger, Month(2026, 11), "2026-11-30")
    assert (november.opening, november.invoiced, november.paid, november.credited) == (0, 25_000, 14_000, 2_500)
    assert november.closing == 8_500
    assert [(line.kind, line.number, line.balance) for line in november.lines] == [
        ("invoice", "INV-2", 20_000),
        ("payment", "PAY-2", 11_000),
        ("credit_note", "CN-1", 9_000),
        ("credit_note", "CN-2", 8_500),
        ("invoice", "INV-3", 13_500),
        ("payment", "PAY-3", 8_500),
    ]
    items = open_items(ledger, Month(2026, 11), "2026-11-30")
    assert [(i.number, i.outstanding, i.days_past_due, i.aging) for i in items.invoices] == [
        ("INV-2", 12_000, 14, "1-30")
    ]
    assert [(i.kind, i.number, i.outstanding) for i in items.credits] == [
        ("payment", "PAY-2", -3_000),
        ("credit_note", "CN-2", -500),
    ]
    assert (items.owed, items.unused_credit, items.total) == (12_000, 3_500, 8_500)
    # On October 31 only INV-1 existed, and PAY-1 had paid it.
    october = open_items(ledger, Month(2026, 10), "2026-11-30")
    assert (october.invoices, october.credits, october.total) == ((), (), 0)
    # On November 11, CN-1 had not been issued: INV-2 still owed 14,000.
    early = open_items(ledger, Month(2026, 11), "2026-11-11")
    assert [(i.number, i.outstanding) for i in early.invoices] == [("INV-2", 14_000)]


@pytest.mark.parametrize(("text", "month"), [("2026-11", Month(2026, 11)), (" 1999-01 ", Month(1999, 1))])
def test_months_parse(text: str, month: Month) -> None:
    assert Month.parse(text) == month


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "26-11", "2026-1", "1969-12", "", "2026-11-01", "\uff12\uff10\uff12\uff16-11"]
)
def test_months_refuse_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="not a month"):
        Month.parse(text)


def test_month_edges() -> None:
    assert Month(2024, 2).last_day == "2024-02-29"
    assert Month(2026, 1).previous() == Month(2025, 12)
    assert Month(2026, 11).label == "November 2026"
    assert Month(2026, 11) > Month(2026, 10) > Month(2025, 12)


# -- on the database -------------------------------------------------------------------------


def test_stored_statements_end_at_the_balance_due(world: World) -> None:
    add_documents(world)
    billing = world.billing
    today = "2026-11-28"
    for company, customer_id in ((world.acme, 1234), (world.acme, 1235), (world.globex, 1234), (world.globex, 77)):
        balance = run(billing.account_balance(company.id, customer_id, "USD", today=today))
        statement = run(billing.balance_forward_statement(company.id, customer_id, "USD", Month(2026, 11), today=today))
        items = run(billing.open_item_statement(company.id, customer_id, "USD", Month(2026, 11), today=today))
        assert statement.closing == items.total == balance.due
        assert items.owed == balance.owed
        assert items.unused_credit == balance.unused_credit
    balance = run(billing.account_balance(world.acme.id, 1234, "USD", today=today))
    assert (balance.owed, balance.unused_credit, balance.due, balance.past_due) == (36880, 7500, 29380, 0)
    late = run(billing.account_balance(world.acme.id, 1234, "USD", today="2026-12-02"))
    assert late.past_due == late.owed


def test_an_invoice_paid_in_full_shows_its_payment(world: World) -> None:
    store, now = world.store, world.clock.now
    invoice = run(
        factories.invoice(
            store,
            world.acme.id,
            1235,
            number="OLD-1",
            issued_on="2026-09-03",
            lines=[LineInput("Bird seed", "1", 2999)],
            now=now,
        )
    )
    run(
        factories.payment(
            store,
            world.acme.id,
            1235,
            amount=2999,
            received_on="2026-09-03",
            applications=[(invoice.id, 2999)],
            now=now,
        )
    )
    statement = run(
        world.billing.balance_forward_statement(world.acme.id, 1235, "USD", Month(2026, 9), today="2026-11-28")
    )
    assert [(line.kind, line.charge, line.credit) for line in statement.lines] == [
        ("invoice", 2999, 0),
        ("payment", 0, 2999),
    ]
    assert statement.closing == 0


def test_other_currencies_and_other_customers_stay_out(world: World) -> None:
    run(
        factories.invoice(
            world.store,
            world.acme.id,
            1234,
            number="EUR-1",
            currency="EUR",
            issued_on="2026-11-03",
            lines=[LineInput("Euro thing", "1", 1000)],
            now=world.clock.now,
        )
    )
    statement = run(
        world.billing.balance_forward_statement(world.acme.id, 1234, "USD", Month(2026, 11), today="2026-11-28")
    )
    assert [line.number for line in statement.lines] == ["INV-0001", "INV-0002"]


def test_the_demo_company_is_believable_and_adds_up(store: Store) -> None:
    now = int(datetime(2026, 11, 28, 18, tzinfo=UTC).timestamp())
    run(seed(store, now))
    company = run(store.company("acme"))
    assert company is not None
    assert company.time_zone == "America/Denver"
    assert company.payment_instructions
    billing = Billing(store)
    today = "2026-11-28"
    statuses: set[str] = set()
    for customer in run(billing.customers(company.id)):
        scope = Scope(company.id, customer.id)
        invoices, _ = run(billing.invoices(scope, limit=100))
        statuses |= {invoice.display_status(today) for invoice in invoices}
        assert any(0 < invoice.amount_paid < invoice.total for invoice in invoices)  # a partial payment
        estimates, _ = run(billing.documents("estimate", scope))
        assert any(estimate.status == "sent" for estimate in estimates)
        assert run(billing.documents("credit_note", scope))[1] >= 1
        balance = run(billing.account_balance(company.id, customer.id, "USD", today=today))
        for month in (Month(2026, 9), Month(2026, 10), Month(2026, 11)):
            statement = run(billing.balance_forward_statement(company.id, customer.id, "USD", month, today=today))
            items = run(billing.open_item_statement(company.id, customer.id, "USD", month, today=today))
            assert statement.closing == items.total
        assert statement.closing == balance.due > 0
        assert balance.past_due > 0
    assert statuses == {"paid", "open", "past_due", "voided"}  # and drafts, which customers never see


def test_statement_months_default_to_the_month_just_closed_until_this_one_has_activity() -> None:
    quiet = statement_months("2027-01-01", "2026-11-15", "2026-11-20", "2026-12-30")
    assert quiet.offered == (Month(2027, 1), Month(2026, 12), Month(2026, 11))
    assert quiet.default == Month(2026, 12)  # across the year's end
    busy = statement_months("2027-01-01", "2026-11-15", "2026-11-20", "2027-01-01")
    assert busy.default == Month(2027, 1)
    # Documents older than the customer's record (history imported) count from their own month.
    imported = statement_months("2027-01-10", "2027-01-05", "2026-12-01", "2026-12-01")
    assert imported.offered == (Month(2027, 1), Month(2026, 12))
    brand_new = statement_months("2027-01-10", "2027-01-10", None, None)
    assert (brand_new.offered, brand_new.default) == ((Month(2027, 1),), Month(2027, 1))
    ancient = statement_months("2027-01-10", "1990-01-01", None, None)
    assert len(ancient.offered) == MAX_MONTHS_OFFERED
