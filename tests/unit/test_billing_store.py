"""Billing documents in the store: payments and credits keep invoices consistent."""

from __future__ import annotations

import pytest

from billportal.storage.errors import Conflict, NotFound
from billportal.storage.records import LineInput
from tests.conftest import World, run


def _open_invoice(world: World, customer_id: int = 1234) -> tuple[int, int]:
    invoices, _ = run(world.store.invoices(world.acme.id, customer_id, statuses=("open",)))
    return invoices[0].id, invoices[0].balance


def test_a_payment_lowers_the_balance_and_pays_the_invoice_in_full(world: World) -> None:
    invoice_id, balance = _open_invoice(world)
    billing = world.store.billing
    first = run(
        billing.create_payment(
            world.acme.id,
            1234,
            number="PAY-1",
            currency="USD",
            received_on="2026-11-10",
            method="card",
            amount=1000,
            applications=[(invoice_id, 1000)],
            now=world.clock.now,
        )
    )
    invoice = run(world.store.invoice(world.acme.id, 1234, invoice_id))
    assert invoice is not None
    assert (invoice.amount_paid, invoice.balance, invoice.status) == (1000, balance - 1000, "open")
    run(
        billing.create_payment(
            world.acme.id,
            1234,
            number="PAY-2",
            currency="USD",
            received_on="2026-11-11",
            method="ach",
            amount=balance - 1000,
            applications=[(invoice_id, balance - 1000)],
            now=world.clock.now,
        )
    )
    invoice = run(world.store.invoice(world.acme.id, 1234, invoice_id))
    assert invoice is not None
    assert (invoice.balance, invoice.status) == (0, "paid")
    payment = run(billing.payment(world.acme.id, 1234, first))
    assert payment is not None
    assert [(a.invoice_id, a.amount) for a in payment.applications] == [(invoice_id, 1000)]
    assert [p.number for p, _ in run(billing.payments_for_invoice(world.acme.id, 1234, invoice_id))] == [
        "PAY-1",
        "PAY-2",
    ]


def test_a_payment_cannot_overpay_or_reach_another_customers_invoice(world: World) -> None:
    invoice_id, balance = _open_invoice(world)
    billing = world.store.billing
    with pytest.raises(Conflict):
        run(
            billing.create_payment(
                world.acme.id,
                1234,
                number="PAY-X",
                currency="USD",
                received_on="2026-11-10",
                method="card",
                amount=balance + 1,
                applications=[(invoice_id, balance + 1)],
                now=world.clock.now,
            )
        )
    with pytest.raises(NotFound):
        run(
            billing.create_payment(
                world.acme.id,
                1235,
                number="PAY-Y",
                currency="USD",
                received_on="2026-11-10",
                method="card",
                amount=100,
                applications=[(invoice_id, 100)],
                now=world.clock.now,
            )
        )
    # Nothing of either attempt was kept.
    payments, total = run(billing.payments(world.acme.id, 1234))
    assert (payments, total) == ([], 0)
    assert run(billing.payment(world.acme.id, 1235, 1)) is None


def test_credit_notes_applied_or_held_as_account_credit(world: World) -> None:
    invoice_id, balance = _open_invoice(world)
    billing = world.store.billing
    run(
        billing.create_credit_note(
            world.acme.id,
            1234,
            number="CN-1",
            currency="USD",
            issued_on="2026-11-12",
            lines=[LineInput("Returned magnet", "1", 500)],
            invoice_id=invoice_id,
            now=world.clock.now,
        )
    )
    run(
        billing.create_credit_note(
            world.acme.id,
            1234,
            number="CN-2",
            currency="USD",
            issued_on="2026-11-13",
            lines=[LineInput("Goodwill", "1", 300)],
            now=world.clock.now,
        )
    )
    invoice = run(world.store.invoice(world.acme.id, 1234, invoice_id))
    assert invoice is not None
    assert (invoice.amount_credited, invoice.balance) == (500, balance - 500)
    assert run(billing.open_credit(world.acme.id, 1234)) == 300
    notes, total = run(billing.credit_notes(world.acme.id, 1234))
    assert total == 2
    assert {n.status for n in notes} == {"applied", "open"}
    detail = run(billing.credit_note(world.acme.id, 1234, notes[0].id))
    assert detail is not None
    assert detail.lines
    assert run(billing.credit_note(world.acme.id, 1235, notes[0].id)) is None


def test_an_estimate_is_approved_once_and_the_company_sees_it(world: World) -> None:
    billing = world.store.billing
    estimate_id = run(
        billing.create_estimate(
            world.acme.id,
            1234,
            number="EST-1",
            currency="USD",
            issued_on="2026-11-01",
            expires_on="2026-12-31",
            lines=[LineInput("Portable hole", "2", 49900)],
            now=world.clock.now,
        )
    )
    assert not run(billing.approve_estimate(world.acme.id, 1235, estimate_id, approved_by="x", now=world.clock.now))
    assert run(billing.approve_estimate(world.acme.id, 1234, estimate_id, approved_by="Wile", now=world.clock.now))
    assert not run(billing.approve_estimate(world.acme.id, 1234, estimate_id, approved_by="Wile", now=world.clock.now))
    estimate = run(billing.estimate(world.acme.id, 1234, estimate_id))
    assert estimate is not None
    assert (estimate.status, estimate.approved_by, estimate.total) == ("approved", "Wile", 99800)
    events = run(billing.customer_events(world.acme.id))
    assert [e.kind for e in events] == ["estimate.approved"]


def test_billing_info_update_records_what_changed(world: World) -> None:
    billing = world.store.billing
    run(billing.update_billing_info(world.acme.id, 1234, {"city": "Tucson", "email": "wile@example.com"}, now=1))
    customer = run(world.store.customer(world.acme.id, 1234))
    assert customer is not None
    assert customer.city == "Tucson"
    (event,) = run(billing.customer_events(world.acme.id, customer_id=1234))
    assert event.kind == "billing_info.updated"
    assert '"city"' in event.detail
    assert "email" not in event.detail  # unchanged
