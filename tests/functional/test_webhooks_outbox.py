"""The webhook outbox: every change of the billing core writes its event in the same transaction.

Events are read back from the outbox as the deliverer would send them; a change
that fails writes none, and a company with no endpoint that wants an event writes none.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from billportal.core.errors import Refused
from billportal.services.billing import Answer, Books, LineInput, estimate_version
from billportal.storage import webhooks as outbox
from tests import factories
from tests.conftest import World, run


def _events(world: World, company_id: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    found = run(world.store.read(lambda conn: outbox.events(conn, company_id or world.acme.id)))
    return [(event_type, json.loads(payload)) for _, event_type, payload in found]


def _types(world: World) -> list[str]:
    return [event_type for event_type, _ in _events(world)]


@pytest.fixture
def subscribed(world: World) -> World:
    run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now))
    return world


def test_no_endpoint_no_event(world: World) -> None:
    run(factories.customer(world.store, world.acme.id, id=9, now=world.clock.now))
    assert _events(world) == []


def test_documents_emit_their_events_with_a_versioned_shape(subscribed: World) -> None:
    world = subscribed
    now = world.clock.now
    run(factories.customer(world.store, world.acme.id, id=9, name="Marvin", now=now))
    invoice = run(factories.invoice(world.store, world.acme.id, 9, now=now))
    run(
        factories.payment(
            world.store, world.acme.id, 9, now=now, amount=invoice.total, applications=[(invoice.id, invoice.total)]
        )
    )
    draft = run(factories.invoice(world.store, world.acme.id, 9, now=now, status="draft"))
    run(world.billing.write(world.acme.id, lambda books: books.update_invoice(draft.id, {"status": "open"}), now=now))
    run(world.billing.write(world.acme.id, lambda books: books.void_invoice(draft.id), now=now))
    run(factories.credit_note(world.store, world.acme.id, 9, now=now, lines=[LineInput("Goodwill", "1", 500)]))
    assert _types(world) == [
        "customer.created",
        "invoice.created",
        "invoice.issued",
        "invoice.paid",
        "payment.created",
        "invoice.created",
        "invoice.issued",
        "invoice.voided",
        "credit_note.created",
    ]
    events = _events(world)
    created = events[1][1]
    assert created["type"] == "invoice.created"
    assert created["version"] == 1
    assert created["id"].startswith("msg_")
    assert created["data"]["object"]["object"] == "invoice"
    assert created["data"]["object"]["id"] == invoice.id
    assert created["data"]["object"]["total"] == invoice.total
    assert created["data"]["object"]["lines"][0]["description"] == "Rocket skates"
    assert events[3][1]["data"]["object"]["status"] == "paid"
    assert events[4][1]["data"]["object"]["amount"] == invoice.total


def test_a_failed_change_writes_no_event(subscribed: World) -> None:
    world = subscribed
    now = world.clock.now

    def work(books: Books) -> None:
        books.create_customer({"id": 10, "name": "Half Done"})
        books.create_invoice({"customer_id": 10, "issued_on": "2026-11-01", "lines": [LineInput("x", "1", 100)]})
        books.record_payment(
            {
                "customer_id": 10,
                "amount": 100,
                "received_on": "2026-11-02",
                "method": "check",
                "applications": [{"invoice_id": 999_999, "amount": 100}],
            }
        )

    with pytest.raises(Refused):
        run(world.billing.write(world.acme.id, work, now=now))
    assert _events(world) == []
    assert run(world.billing.customer(world.acme.id, 10)) is None


def test_customer_changes_carry_old_and_new_values(subscribed: World) -> None:
    world = subscribed
    now = world.clock.now
    run(
        world.billing.write(
            world.acme.id, lambda books: books.update_customer(1235, {"name": "Road Runner Inc."}), now=now
        )
    )
    run(world.billing.update_billing_info(world.acme.id, 1234, {"city": "Phoenix", "email": "wile@acme.test"}, now=now))
    (_, updated), (_, billing) = _events(world)
    assert updated["type"] == "customer.updated"
    assert updated["data"]["previous"] == {"name": "Road Runner"}
    assert updated["data"]["object"]["name"] == "Road Runner Inc."
    assert billing["type"] == "customer.billing_info_updated"
    assert billing["data"]["changes"]["city"]["new"] == "Phoenix"
    assert billing["data"]["changes"]["email"] == {"old": "wile@example.com", "new": "wile@acme.test"}


def test_only_the_event_types_an_endpoint_wants(world: World) -> None:
    now = world.clock.now
    run(factories.webhook_endpoint(world.store, world.acme.id, now=now, event_types=["invoice.voided"]))
    invoice = run(factories.invoice(world.store, world.acme.id, 1234, now=now))
    run(world.billing.write(world.acme.id, lambda books: books.void_invoice(invoice.id), now=now))
    assert _types(world) == ["invoice.voided"]
    assert _events(world, world.globex.id) == []


def test_a_refused_sign_in_link_is_an_event_with_its_reason(world: World) -> None:
    now = world.clock.now
    client = world.client()
    expired = world.token({"sub": 1234, "iss": "Ruby Backend", "exp": now - 3600})
    assert client.get(f"/login/{expired}").status_code == 401
    assert _events(world) == []  # no endpoint wants it: nothing written
    run(factories.webhook_endpoint(world.store, world.acme.id, now=now, event_types=["sign_in.failed"]))
    client = world.client()  # a new app: a new copy of who wants sign-in failures
    assert client.get(f"/login/{expired}").status_code == 401
    ((event_type, failed),) = _events(world)
    assert event_type == "sign_in.failed"
    assert failed["data"]["object"]["reason"] == "expired"
    assert failed["data"]["object"]["customer_id"] == 1234


def test_an_approved_estimate_is_an_event(subscribed: World) -> None:
    world = subscribed
    now = world.clock.now
    estimate = run(factories.estimate(world.store, world.acme.id, 1234, now=now))
    answer = run(
        world.billing.approve_estimate(
            world.acme.id,
            1234,
            estimate.id,
            approved_by="Wile E.",
            version=estimate_version(estimate),
            now=now,
            valid_on=None,
        )
    )
    assert answer is Answer.DONE
    ((event_type, approved),) = _events(world)
    assert event_type == "estimate.approved"
    assert approved["data"]["object"]["approved_by"] == "Wile E."


def test_a_refund_is_an_event_with_the_payment_as_it_is_now(subscribed: World) -> None:
    world = subscribed
    now = world.clock.now
    run(factories.customer(world.store, world.acme.id, id=9, name="Marvin", now=now))
    invoice = run(factories.invoice(world.store, world.acme.id, 9, now=now))
    paid = run(
        factories.payment(
            world.store, world.acme.id, 9, now=now, amount=invoice.total, applications=[(invoice.id, invoice.total)]
        )
    )

    def refund(books: Books) -> Any:
        return books.refund_payment(
            paid.id,
            amount=1000,
            reason="Damaged skates",
            source="api",
            request_key="refund-1",
            refunded_on="2026-11-28",
            online=False,
        )

    run(world.billing.write(world.acme.id, refund, now=now))
    refunded = [body for event_type, body in _events(world) if event_type == "payment.refunded"]
    assert len(refunded) == 1
    data = refunded[0]["data"]
    assert (data["object"]["id"], data["object"]["amount_refunded"]) == (paid.id, 1000)
    assert (data["refund"]["amount"], data["refund"]["reason"]) == (1000, "Damaged skates")
