"""What a pay form asks for, as a plan: the whole balance, chosen invoices, or an amount applied oldest due first."""

from __future__ import annotations

import pytest

from billportal.core.errors import Refused
from billportal.services.gateways import CardEntry, Declined, TestGateway
from billportal.services.payments import PayPlan, plan_for, retry_days_text
from billportal.storage.records import Invoice


def _invoice(invoice_id: int, balance: int, due_on: str, *, status: str = "open", currency: str = "USD") -> Invoice:
    return Invoice(
        id=invoice_id,
        company_id=1,
        customer_id=1234,
        number=f"INV-{invoice_id}",
        currency=currency,
        status=status,
        issued_on="2026-11-01",
        due_on=due_on,
        subtotal=balance,
        discount=0,
        tax=0,
        total=balance,
        amount_paid=0,
        amount_credited=0,
        balance=balance,
        notes="",
        created_at=0,
        updated_at=0,
    )


INVOICES = [
    _invoice(3, 3000, "2026-12-20"),
    _invoice(1, 1000, "2026-12-01"),
    _invoice(2, 2000, "2026-12-10"),
    _invoice(4, 500, "2026-11-01", status="paid"),
    _invoice(5, 700, "2026-11-01", currency="EUR"),
]


def test_the_whole_balance_is_every_open_invoice_in_the_currency() -> None:
    assert plan_for(INVOICES, "USD") == PayPlan(6000, "USD", ((1, 1000), (2, 2000), (3, 3000)))


def test_chosen_invoices_are_paid_in_full_and_must_all_be_open() -> None:
    assert plan_for(INVOICES, "USD", chosen=[3, 1]) == PayPlan(4000, "USD", ((1, 1000), (3, 3000)))
    for chosen in ([], [4], [5], [1, 99]):
        with pytest.raises(Refused):
            plan_for(INVOICES, "USD", chosen=chosen)


def test_an_amount_goes_to_the_invoices_due_first() -> None:
    assert plan_for(INVOICES, "USD", amount=2500) == PayPlan(2500, "USD", ((1, 1000), (2, 1500)))
    assert plan_for(INVOICES, "USD", amount=6000).applications == ((1, 1000), (2, 2000), (3, 3000))
    for amount in (0, -1, 6001):
        with pytest.raises(Refused):
            plan_for(INVOICES, "USD", amount=amount)


def test_the_retry_schedule_is_up_to_five_increasing_days() -> None:
    assert retry_days_text(" 1, 3 ,7") == "1,3,7"
    for bad in ("3,1", "0,2", "1,1", "1,2,3,4,5,6", "a", "1;3"):
        with pytest.raises(Refused):
            retry_days_text(bad)


def test_the_test_gateway_takes_only_test_cards_and_answers_a_retry_alike() -> None:
    gateway = TestGateway(1)
    card = CardEntry("4242424242424242", 12, 2030, "123")
    first = gateway.confirm_new(
        customer_id=1, gateway_customer="c", method=card, amount=100, currency="USD", idempotency_key="k"
    )
    again = gateway.confirm_new(
        customer_id=1, gateway_customer="c", method=card, amount=100, currency="USD", idempotency_key="k"
    )
    assert (first.status, first.gateway_payment_id) == ("succeeded", again.gateway_payment_id)
    assert first.card is not None
    assert first.card.label == "Visa ending 4242"
    declined = CardEntry("4000000000000002", 12, 2030, "123")
    assert gateway.confirm_new(
        customer_id=1, gateway_customer="c", method=declined, amount=1, currency="USD", idempotency_key="d"
    ).status == ("declined")
    with pytest.raises(Declined):
        gateway.confirm_new(
            customer_id=1,
            gateway_customer="c",
            method=CardEntry("4111111111111111", 1, 2030, "1"),
            amount=1,
            currency="USD",
            idempotency_key="x",
        )
    assert "4242" not in repr(card)  # a typed card's number never shows in a repr (logs, tracebacks)
