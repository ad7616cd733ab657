"""Refunds through Stripe, against localstripe (a fake Stripe server run as a process), over HTTP.

A refund asked for through the API reaches Stripe (with billportal's refund id in its
metadata); Stripe's ``charge.refunded`` webhook then records a refund made in Stripe's
own dashboard once, whatever number of times it is delivered, and never records one
billportal made a second time, even when it comes before billportal wrote Stripe's answer.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.testclient import TestClient

from billportal.core.clock import local_date
from billportal.services.billing import Books
from billportal.storage.documents import Scope
from billportal.storage.records import Payment
from tests.conftest import World, run
from tests.functional.test_api import dashboard, new_key
from tests.functional.test_stripe import INVOICE, _deliver, _invoices, _pay, _pay_form, client
from tests.stripe_support import card_payment_method, localstripe_api

__all__ = ["client"]  # a fixture, imported so that it is found here (localstripe: tests/conftest.py)


def _paid_online(world: World, client: TestClient, localstripe: str) -> tuple[Payment, str]:
    """INV-0001 paid with a new card through Stripe: the payment, and its PaymentIntent's id."""
    first = _invoices(world)["INV-0001"]
    method = card_payment_method(localstripe, "4242424242424242")
    form = _pay_form(client, what="invoices", payment_method=method, **{f"invoice_{first.id}": "1"})
    assert "was paid with Visa ending 4242" in _pay(client, form)
    rows, _ = run(world.billing.documents("payment", Scope(world.acme.id, 1234)))
    [payment] = rows
    assert isinstance(payment, Payment)
    assert payment.gateway_payment_id is not None
    return payment, payment.gateway_payment_id


def _payment(world: World, payment_id: int) -> Payment:
    found: Payment = run(world.billing.get("payment", Scope(world.acme.id), payment_id))
    return found


def _charge_refunded(event_id: str, intent: str, kind: str = "charge.refunded") -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": f"ch_for_{intent}", "object": "charge", "payment_intent": intent, "refunded": True}},
    }


def test_a_refund_through_the_api_reaches_stripe_and_its_webhook_records_nothing_more(
    world: World, client: TestClient, localstripe: str
) -> None:
    payment, intent = _paid_online(world, client, localstripe)
    assert payment.gateway == "stripe"
    api = dashboard(world, new_key(world))
    response = api.post(
        f"/api/v1/payments/{payment.id}/refunds",
        json={"amount": 1000, "reason": "Scratched"},
        headers={"Idempotency-Key": "stripe-refund-1"},
    )
    assert response.status_code == 201, response.text
    refund = response.json()
    assert refund["gateway_refund_id"].startswith("re_")
    at_stripe = localstripe_api(localstripe).refunds.list(params={"payment_intent": intent}).data
    assert [(r.id, r.amount, r.metadata["billportal_refund"]) for r in at_stripe] == [
        (refund["gateway_refund_id"], 1000, str(refund["id"]))
    ]
    # Stripe tells about the refund billportal made: nothing more is recorded.
    assert _deliver(client, _charge_refunded("evt_refund_ours", intent)) == 200
    assert [(r.amount, r.source) for r in _payment(world, payment.id).refunds] == [(1000, "api")]
    assert (_invoices(world)["INV-0001"].status, _invoices(world)["INV-0001"].balance) == ("open", 1000)
    # More than is left is refused before Stripe is asked.
    over = api.post(f"/api/v1/payments/{payment.id}/refunds", json={"amount": INVOICE})
    assert over.json()["error"]["code"] == "refund_exceeds_payment"
    assert len(localstripe_api(localstripe).refunds.list(params={"payment_intent": intent}).data) == 1


def test_a_refund_made_in_stripes_dashboard_is_recorded_once_however_often_it_is_delivered(
    world: World, client: TestClient, localstripe: str
) -> None:
    payment, intent = _paid_online(world, client, localstripe)
    made = localstripe_api(localstripe).refunds.create(params={"payment_intent": intent, "amount": 2500})
    event = _charge_refunded("evt_refund_theirs", intent)
    assert _deliver(client, event) == 200
    assert _deliver(client, event) == 200  # delivered twice
    assert _deliver(client, _charge_refunded("evt_refund_update", intent, "charge.refund.updated")) == 200
    [refund] = _payment(world, payment.id).refunds
    assert (refund.gateway_refund_id, refund.amount, refund.source, refund.status) == (
        made.id,
        2500,
        "gateway",
        "succeeded",
    )
    assert _payment(world, payment.id).amount_refunded == 2500
    assert _invoices(world)["INV-0001"].balance == 2500
    today = local_date(world.clock.now, world.acme.time_zone).isoformat()
    due = run(world.billing.account_balance(world.acme.id, 1234, "USD", today=today))
    assert due.due == 2 * INVOICE - INVOICE + 2500


def test_the_webhook_concludes_our_pending_refund_rather_than_record_a_second(
    world: World, client: TestClient, localstripe: str
) -> None:
    payment, intent = _paid_online(world, client, localstripe)
    today = local_date(world.clock.now, world.acme.time_zone).isoformat()
    # Our refund is at Stripe, and Stripe's webhook comes before billportal wrote Stripe's answer.
    pending, _ = run(
        world.store.write(
            lambda conn: Books(conn, world.acme.id, world.clock.now).refund_payment(
                payment.id,
                amount=700,
                reason="Pending at Stripe",
                source="api",
                request_key="api:pending-at-stripe",
                refunded_on=today,
                online=True,
            )
        )
    )
    assert pending.status == "pending"
    params = {"payment_intent": intent, "amount": 700, "metadata": {"billportal_refund": str(pending.id)}}
    made = localstripe_api(localstripe).refunds.create(params=params)
    assert _deliver(client, _charge_refunded("evt_refund_race", intent)) == 200
    [refund] = _payment(world, payment.id).refunds
    assert (refund.id, refund.status, refund.gateway_refund_id, refund.source) == (
        pending.id,
        "succeeded",
        made.id,
        "api",
    )
    # Then billportal writes Stripe's answer: it was recorded already, once.
    run(
        world.store.write(
            lambda conn: Books(conn, world.acme.id, world.clock.now).conclude_refund(
                pending.id, gateway_refund_id=made.id
            )
        )
    )
    assert _payment(world, payment.id).amount_refunded == 700
