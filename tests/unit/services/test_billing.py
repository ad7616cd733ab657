"""The one write model: every rule of billing data, through ``Books``, on a real database.

The API, the portal, the demo and these tests all change data through
``billportal.services.billing``; what it refuses, nothing else can make.
(Concurrency is proved on PostgreSQL with two processes: tests/scaleout/test_concurrency.py.)
"""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection

from billportal.core.bounds import MAX_AMOUNT, MAX_ID
from billportal.core.errors import NotFound, Refused
from billportal.services import statements
from billportal.services.billing import Answer, Books, LineInput, estimate_version
from billportal.services.statements import Month
from billportal.storage import documents
from billportal.storage.documents import Scope
from billportal.storage.records import Invoice, Ledger
from tests import factories
from tests.conftest import World, run


def open_invoice(world: World, customer_id: int = 1234) -> Invoice:
    invoices, _ = run(world.billing.invoices(Scope(world.acme.id, customer_id), statuses=("open",)))
    return invoices[0]


def write(world: World, work: Any) -> Any:
    return run(world.billing.write(world.acme.id, work, now=world.clock.now))


def refused(world: World, work: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        write(world, work)
    return caught.value


def test_payments_lower_the_balance_and_the_last_one_pays_the_invoice(world: World) -> None:
    invoice = open_invoice(world)
    store, now = world.store, world.clock.now
    first = run(factories.payment(store, world.acme.id, 1234, amount=1000, applications=[(invoice.id, 1000)], now=now))
    after = run(world.billing.get("invoice", Scope(world.acme.id), invoice.id))
    assert (after.amount_paid, after.balance, after.status) == (1000, invoice.total - 1000, "open")
    rest = invoice.total - 1000
    run(factories.payment(store, world.acme.id, 1234, amount=rest, applications=[(invoice.id, rest)], now=now))
    after = run(world.billing.get("invoice", Scope(world.acme.id), invoice.id))
    assert (after.balance, after.status, after.amount_paid) == (0, "paid", invoice.total)
    assert [(a.invoice_id, a.amount) for a in first.applications] == [(invoice.id, 1000)]
    payments, _ = run(world.billing.settlements(Scope(world.acme.id, 1234), invoice.id))
    assert [applied for _, applied in payments] == [1000, rest]


def test_a_payment_cannot_overpay_or_reach_another_customers_invoice(world: World) -> None:
    invoice = open_invoice(world)

    def pay(customer_id: int, amount: int) -> Any:
        values = {
            "customer_id": customer_id,
            "amount": amount,
            "received_on": "2026-11-10",
            "method": "card",
            "applications": [{"invoice_id": invoice.id, "amount": amount}],
        }
        return lambda books: books.record_payment(values)

    assert refused(world, pay(1234, invoice.total + 1)).code == "amount_exceeds_balance"
    assert refused(world, pay(1235, 100)).code == "invoice_not_open"
    payments, total = run(world.billing.documents("payment", Scope(world.acme.id)))
    assert (payments, total) == ([], 0)  # nothing of either attempt was kept


def test_applications_are_checked_before_anything_is_written(world: World) -> None:
    invoice = open_invoice(world)
    base = {"customer_id": 1234, "received_on": "2026-11-10", "method": "check"}
    twice = [{"invoice_id": invoice.id, "amount": 10}, {"invoice_id": invoice.id, "amount": 10}]
    assert refused(world, lambda b: b.record_payment({**base, "amount": 100, "applications": twice})).code == (
        "duplicate_invoice"
    )
    over = [{"invoice_id": invoice.id, "amount": 200}]
    assert refused(world, lambda b: b.record_payment({**base, "amount": 100, "applications": over})).code == (
        "overapplied"
    )
    euro = {**base, "amount": 100, "currency": "EUR", "applications": [{"invoice_id": invoice.id, "amount": 100}]}
    assert refused(world, lambda b: b.record_payment(euro)).code == "currency_mismatch"
    assert refused(world, lambda b: b.record_payment({**base, "amount": 0})).code == "invalid_field"
    assert refused(world, lambda b: b.record_payment({**base, "amount": 1, "method": "barter"})).code == (
        "invalid_field"
    )


def test_deleting_a_payment_gives_the_invoices_their_balance_back(world: World) -> None:
    invoice = open_invoice(world)
    paid = run(
        factories.payment(
            world.store,
            world.acme.id,
            1234,
            amount=invoice.total,
            applications=[(invoice.id, invoice.total)],
            now=world.clock.now,
        )
    )
    assert run(world.billing.get("invoice", Scope(world.acme.id), invoice.id)).status == "paid"
    write(world, lambda books: books.delete_payment(paid.id))
    after = run(world.billing.get("invoice", Scope(world.acme.id), invoice.id))
    assert (after.status, after.balance, after.amount_paid) == ("open", invoice.total, 0)
    with pytest.raises(NotFound):
        write(world, lambda books: books.delete_payment(paid.id))


def test_credit_notes_applied_or_held_as_account_credit(world: World) -> None:
    invoice = open_invoice(world)
    store, now = world.store, world.clock.now
    applied = run(
        factories.credit_note(
            store, world.acme.id, 1234, lines=[LineInput("Returned magnet", "1", 500)], invoice_id=invoice.id, now=now
        )
    )
    run(factories.credit_note(store, world.acme.id, 1234, lines=[LineInput("Goodwill", "1", 300)], now=now))
    after = run(world.billing.get("invoice", Scope(world.acme.id), invoice.id))
    assert (after.amount_credited, after.balance) == (500, invoice.total - 500)
    balance = run(world.billing.account_balance(world.acme.id, 1234, "USD"))
    assert balance.unused_credit == 300
    notes, total = run(world.billing.documents("credit_note", Scope(world.acme.id, 1234)))
    assert (total, {n.status for n in notes}) == (2, {"applied", "open"})
    # Voiding the applied one gives the invoice its balance back.
    write(world, lambda books: books.void_credit_note(applied.id))
    after = run(world.billing.get("invoice", Scope(world.acme.id), invoice.id))
    assert (after.amount_credited, after.balance) == (0, invoice.total)


def test_a_credit_note_cannot_credit_more_than_the_balance(world: World) -> None:
    invoice = open_invoice(world)
    values = {
        "customer_id": 1234,
        "issued_on": "2026-11-12",
        "invoice_id": invoice.id,
        "lines": [LineInput("Too much", "1", invoice.total + 1)],
    }
    assert refused(world, lambda books: books.create_credit_note(values)).code == "amount_exceeds_balance"


def test_an_invoice_is_made_draft_or_open_never_paid(world: World) -> None:
    values = {"customer_id": 1234, "issued_on": "2026-11-01", "status": "paid", "lines": [LineInput("x", "1", 100)]}
    assert refused(world, lambda books: books.create_invoice(values)).code == "invalid_status"
    values["status"] = "draft"
    draft = write(world, lambda books: books.create_invoice(values))
    assert (draft.status, draft.balance, draft.total) == ("draft", 100, 100)
    issued = write(world, lambda books: books.update_invoice(draft.id, {"status": "open"}))
    assert issued.status == "open"
    assert refused(world, lambda books: books.update_invoice(draft.id, {"status": "draft"})).code == (
        "invalid_status_change"
    )


def test_totals_are_bounded_like_every_amount(world: World) -> None:
    near = MAX_AMOUNT // 2 + 1
    values = {"customer_id": 1234, "issued_on": "2026-11-01", "lines": [LineInput("Big", "1", near)] * 2}
    error = refused(world, lambda books: books.create_invoice(values))
    assert (error.code, error.field) == ("amount_too_large", "lines")
    values["lines"] = [LineInput("Bigger", "2", MAX_AMOUNT)]
    assert refused(world, lambda books: books.create_invoice(values)).code == "amount_too_large"
    values["lines"] = [LineInput("Discounted", "1", 100, discount=101)]
    assert refused(world, lambda books: books.create_invoice(values)).code == "discount_too_large"


def test_one_function_makes_the_totals_of_every_kind(world: World) -> None:
    lines = [LineInput("Hole", "2", 49900, tax=9980), LineInput("Installation", "3", 7500, discount=2500)]
    base = {"customer_id": 1234, "issued_on": "2026-11-01", "lines": lines}
    invoice = write(world, lambda books: books.create_invoice(base))
    estimate = write(world, lambda books: books.create_estimate(base))
    # An invoice keeps its discount apart; estimates and credit notes show the lines net of it.
    assert (invoice.subtotal, invoice.discount, invoice.tax, invoice.total) == (122300, 2500, 9980, 129780)
    assert (estimate.subtotal, estimate.tax, estimate.total) == (119800, 9980, 129780)
    assert sum(line.amount for line in invoice.lines) == invoice.total


def test_numbers_are_drawn_in_turn_and_skip_numbers_given_by_hand(world: World) -> None:
    base = {"customer_id": 1234, "issued_on": "2026-11-01", "lines": [LineInput("x", "1", 100)]}
    first = write(world, lambda books: books.create_estimate(base))
    write(world, lambda books: books.create_estimate({**base, "number": "EST-00002"}))
    third = write(world, lambda books: books.create_estimate(base))
    assert (first.number, third.number) == ("EST-00001", "EST-00003")
    error = refused(world, lambda books: books.create_estimate({**base, "number": "EST-00001"}))
    assert (error.code, error.field) == ("number_taken", "number")


def test_a_voided_invoice_owes_nothing_and_one_with_payments_cannot_be_voided(world: World) -> None:
    invoice = open_invoice(world)
    run(factories.payment(world.store, world.acme.id, 1234, amount=1, applications=[(invoice.id, 1)], now=1))
    assert refused(world, lambda books: books.void_invoice(invoice.id)).code == "not_voidable"
    other = open_invoice(world, 1235)
    voided = write(world, lambda books: books.void_invoice(other.id))
    assert (voided.status, voided.balance) == ("voided", 0)
    assert refused(world, lambda books: books.update_invoice(other.id, {"due_on": "2027-01-01"})).code == (
        "invoice_not_editable"
    )


def test_an_estimate_is_approved_once_and_the_company_sees_it(world: World) -> None:
    estimate = run(
        factories.estimate(
            world.store, world.acme.id, 1234, lines=[LineInput("Portable hole", "2", 49900)], now=world.clock.now
        )
    )

    def approve(customer_id: int, version: str = estimate_version(estimate)) -> Answer:
        return run(
            world.billing.approve_estimate(
                world.acme.id,
                customer_id,
                estimate.id,
                approved_by="Wile",
                version=version,
                now=world.clock.now,
                valid_on=None,
            )
        )

    assert approve(1235) is Answer.CLOSED
    assert approve(1234, "another version") is Answer.CHANGED
    assert approve(1234) is Answer.DONE
    assert approve(1234) is Answer.CLOSED
    approved = run(world.billing.get("estimate", Scope(world.acme.id, 1234), estimate.id))
    assert (approved.status, approved.approved_by, approved.total) == ("approved", "Wile", 99800)
    assert [e.kind for e in run(world.billing.customer_events(world.acme.id))] == ["estimate.approved"]


def test_billing_info_update_records_what_changed(world: World) -> None:
    changes = {"city": "Tucson", "email": "wile@example.com"}
    changed = run(world.billing.update_billing_info(world.acme.id, 1234, changes, now=1))
    assert changed == ["city"]
    customer = run(world.billing.customer(world.acme.id, 1234))
    assert customer is not None
    assert customer.city == "Tucson"
    (event,) = run(world.billing.customer_events(world.acme.id, customer_id=1234))
    assert event.kind == "billing_info.updated"
    assert '"city"' in event.detail
    assert "email" not in event.detail  # unchanged


def test_customer_ids_come_next_above_the_largest_and_never_overflow(world: World) -> None:
    made = write(world, lambda books: books.create_customer({"name": "Next"}))
    assert made.id == 1234567891  # the world's largest customer id is 1234567890
    assert made.number == f"CUST-{made.id:05d}"
    assert refused(world, lambda books: books.create_customer({"id": 1234, "name": "Again"})).code == (
        "customer_exists"
    )
    write(world, lambda books: books.create_customer({"id": MAX_ID, "name": "Largest"}))
    error = refused(world, lambda books: books.create_customer({"name": "After the largest"}))
    assert (error.code, error.field) == ("customer_id_required", "id")


def test_a_value_its_column_cannot_hold_is_refused_by_name(world: World) -> None:
    error = refused(world, lambda books: books.create_customer({"name": "x" * 201}))
    assert (error.code, error.field) == ("invalid_field", "name")
    error = refused(world, lambda books: books.create_customer({"name": "Nul\x00byte"}))
    assert (error.code, error.field) == ("invalid_field", "name")


def test_a_customer_with_documents_is_kept(world: World) -> None:
    assert refused(world, lambda books: books.delete_customer(1234)).code == "customer_has_documents"
    lonely = write(world, lambda books: books.create_customer({"name": "Lonely"}))
    assert write(world, lambda books: books.delete_customer(lonely.id)).id == lonely.id
    assert run(world.billing.customer(world.acme.id, lonely.id)) is None


def test_books_are_one_companys_only(world: World) -> None:
    theirs, _ = run(world.billing.invoices(Scope(world.globex.id, 1234)))
    with pytest.raises(NotFound):
        write(world, lambda books: books.void_invoice(theirs[0].id))
    assert run(world.billing.get("invoice", Scope(world.globex.id), theirs[0].id)).status == "open"


def test_a_refused_change_leaves_nothing_behind(world: World) -> None:
    invoice = open_invoice(world)

    def half_then_refused(books: Books) -> None:
        books.create_customer({"name": "Half"})
        books.update_invoice(invoice.id, {"notes": "changed"})
        raise Refused("conflict", "changed my mind")

    refused(world, half_then_refused)
    assert run(world.billing.get("invoice", Scope(world.acme.id), invoice.id)).notes == ""
    customers = run(world.billing.customers(world.acme.id, limit=100))
    assert "Half" not in {c.name for c in customers}


# -- whatever happens, the books stay consistent ------------------------------------------------------------

STEPS = st.lists(
    st.tuples(
        st.sampled_from(["pay", "credit", "delete_payment", "void_credit", "void_invoice", "edit_lines"]),
        st.integers(0, 5),
        st.integers(1, 40_000),
    ),
    max_size=12,
)


def _step(world: World, kind: str, index: int, amount: int) -> None:
    scope = Scope(world.acme.id, 1234)
    invoices, _ = run(world.billing.invoices(scope, limit=100))
    invoice = invoices[index % len(invoices)]
    if kind == "pay":
        values = {
            "customer_id": 1234,
            "amount": amount,
            "received_on": "2026-11-20",
            "method": "check",
            "applications": [{"invoice_id": invoice.id, "amount": min(amount, max(invoice.balance, 1))}],
        }
        write(world, lambda books: books.record_payment(values))
    elif kind == "credit":
        note = {
            "customer_id": 1234,
            "issued_on": "2026-11-21",
            "invoice_id": invoice.id,
            "lines": [LineInput("c", "1", amount)],
        }
        write(world, lambda books: books.create_credit_note(note))
    elif kind in ("delete_payment", "void_credit"):
        document = "payment" if kind == "delete_payment" else "credit_note"
        found, _ = run(world.billing.documents(document, scope, limit=100))
        if found:
            chosen = found[index % len(found)].id
            if kind == "delete_payment":
                write(world, lambda books: books.delete_payment(chosen))
            else:
                write(world, lambda books: books.void_credit_note(chosen))
    elif kind == "void_invoice":
        write(world, lambda books: books.void_invoice(invoice.id))
    else:
        write(world, lambda books: books.update_invoice(invoice.id, {"lines": [LineInput("new", "1", amount)]}))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_any_sequence_of_changes_keeps_every_invoice_and_statement_consistent(
    world: World, steps: list[tuple[str, int, int]]
) -> None:
    for kind, index, amount in steps:
        with contextlib.suppress(Refused):  # a refused change leaves nothing behind: the checks below see to it
            _step(world, kind, index, amount)
    scope = Scope(world.acme.id, 1234)
    invoices, _ = run(world.billing.invoices(scope, limit=100))
    payments, _ = run(world.billing.documents("payment", scope, limit=1000))
    notes, _ = run(world.billing.documents("credit_note", scope, limit=1000))
    for invoice in invoices:
        paid = sum(
            a.amount
            for p in payments
            for a in run(world.billing.get("payment", scope, p.id)).applications
            if a.invoice_id == invoice.id
        )
        credited = sum(n.total for n in notes if n.invoice_id == invoice.id and n.status == "applied")
        assert (invoice.amount_paid, invoice.amount_credited) == (paid, credited)
        assert 0 <= invoice.balance <= invoice.total
        if invoice.status == "voided":
            assert (invoice.balance, paid, credited) == (0, 0, 0)
        else:
            assert invoice.balance == invoice.total - paid - credited
            assert (invoice.status == "paid") == (invoice.balance == 0 and invoice.status != "draft")
    today = "2026-11-30"
    balance = run(world.billing.account_balance(world.acme.id, 1234, "USD", today=today))
    statement = run(world.billing.balance_forward_statement(world.acme.id, 1234, "USD", Month(2026, 11), today=today))
    items = run(world.billing.open_item_statement(world.acme.id, 1234, "USD", Month(2026, 11), today=today))
    assert statement.closing == items.total == balance.due


# -- a balance-forward statement reads only its month, and agrees with the whole history ------------------

DATED = st.lists(
    st.tuples(
        st.sampled_from(["invoice", "pay", "credit", "refund", "void"]),
        st.integers(0, 100),  # days after 2026-09-01
        st.integers(1, 30_000),
    ),
    max_size=12,
)


def _dated_step(world: World, kind: str, on: str, amount: int) -> None:
    scope = Scope(world.acme.id, 1234)
    if kind == "invoice":
        values = {"customer_id": 1234, "issued_on": on, "lines": [LineInput("x", "1", amount)]}
        write(world, lambda books: books.create_invoice(values))
        return
    invoices, _ = run(world.billing.invoices(scope, statuses=("open",), limit=100))
    if kind == "pay":
        applied = [{"invoice_id": invoices[-1].id, "amount": min(amount, invoices[-1].balance)}] if invoices else []
        paid = {"customer_id": 1234, "amount": amount, "received_on": on, "method": "check", "applications": applied}
        write(world, lambda books: books.record_payment(paid))
    elif kind == "credit":
        note = {"customer_id": 1234, "issued_on": on, "lines": [LineInput("c", "1", amount)]}
        write(world, lambda books: books.create_credit_note(note))
    elif kind == "refund":
        payments, _ = run(world.billing.documents("payment", scope, limit=100))
        if payments:
            payment_id = payments[0].id
            write(
                world,
                lambda books: books.refund_payment(
                    payment_id,
                    amount=None,
                    reason="",
                    source="dashboard",
                    request_key=f"refund-{on}-{amount}",
                    refunded_on=on,
                    online=False,
                ),
            )
    elif invoices:
        write(world, lambda books: books.void_invoice(invoices[0].id))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=DATED)
def test_a_months_balance_forward_agrees_with_the_whole_history(
    world: World, steps: list[tuple[str, int, int]]
) -> None:
    for kind, day, amount in steps:
        with contextlib.suppress(Refused):
            _dated_step(world, kind, (date(2026, 9, 1) + timedelta(days=day)).isoformat(), amount)
    company_id = world.acme.id
    for month in (Month(2026, 8), Month(2026, 9), Month(2026, 10), Month(2026, 11), Month(2026, 12)):
        for today in ("2026-10-15", "2026-11-30", "2026-12-31"):
            shown = run(world.billing.balance_forward_statement(company_id, 1234, "USD", month, today=today))
            until = min(month.last_day, today)

            def history(conn: Connection, until: str = until) -> Ledger:
                return documents.ledger(conn, company_id, 1234, "USD", until)

            whole = run(world.store.read(history))
            assert shown == statements.balance_forward(whole, month, today), (month, today)
