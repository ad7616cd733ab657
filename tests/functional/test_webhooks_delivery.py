"""Delivering webhooks to a real local receiver that verifies every signature with ``standardwebhooks``.

The deliverer runs as the server runs it, with the tests' clock moved by hand for the
retries' schedule; the receiver is a real HTTP server in a thread.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from billportal.core.errors import Refused
from billportal.services import webhooks
from billportal.services.audit import CLI
from billportal.services.webhooks import RETRY_WINDOW, Deliverer, Refusal, Webhooks
from billportal.storage import webhooks as outbox
from billportal.storage.records import WebhookEndpoint
from tests import factories
from tests.conftest import World, run
from tests.webhook_receiver import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def _endpoint(world: World, receiver: Receiver, *types: str) -> WebhookEndpoint:
    shown = run(
        factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now, url=receiver.url, event_types=types)
    )
    receiver.secrets.append(shown.secret)
    return shown.endpoint


def _deliver(world: World, *, timeout: float = 5.0, test_mode: bool = True) -> int:
    deliverer = Deliverer(world.store, test_mode=test_mode, timeout=timeout, rng=lambda: 0.5)
    return run(deliverer.run_until_idle(world.clock.now))


def _log(world: World, endpoint: WebhookEndpoint) -> list[tuple[str, str, int, list[int | None]]]:
    found = run(Webhooks(world.store).deliveries(world.acme.id, endpoint.id))
    return [(d.type, d.state, d.attempts, [a.status_code for a in tries]) for d, tries in found]


def _new_customer(world: World, customer_id: int) -> None:
    run(factories.customer(world.store, world.acme.id, id=customer_id, now=world.clock.now))


def test_events_arrive_signed_and_the_log_keeps_each_attempt(world: World, receiver: Receiver) -> None:
    endpoint = _endpoint(world, receiver, "customer.created")
    _new_customer(world, 50)
    assert _deliver(world) == 1
    (got,) = receiver.received
    assert got.verified_by == [0]
    assert got.body["type"] == "customer.created"
    assert got.body["data"]["object"]["id"] == 50
    assert got.webhook_id == got.body["id"]
    ((delivery, (attempt,)),) = run(Webhooks(world.store).deliveries(world.acme.id, endpoint.id))
    assert delivery.state == "delivered"
    assert attempt.status_code == 200
    assert attempt.response_head == f'{{"received": "{got.webhook_id}"}}'
    assert attempt.duration_ms >= 0
    assert _deliver(world) == 0  # delivered once


def test_a_500_is_retried_with_backoff_until_it_is_delivered(world: World, receiver: Receiver) -> None:
    endpoint = _endpoint(world, receiver, "customer.created")
    receiver.script[:] = [500, 503]
    _new_customer(world, 51)
    assert _deliver(world) == 1
    assert _log(world, endpoint) == [("customer.created", "pending", 1, [500])]
    world.clock.advance(29)
    assert _deliver(world) == 0  # the first retry waits 30 s (the jitter here is none)
    world.clock.advance(1)
    assert _deliver(world) == 1
    world.clock.advance(59)
    assert _deliver(world) == 0  # then 60 s
    world.clock.advance(1)
    assert _deliver(world) == 1
    assert _log(world, endpoint) == [("customer.created", "delivered", 3, [500, 503, 200])]
    assert len(set(receiver.counts())) == 1
    assert all(r.verified_by == [0] for r in receiver.received)


def test_backoff_doubles_with_jitter_and_gives_up_after_three_days() -> None:
    assert [webhooks.backoff(n, lambda: 0.5) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert webhooks.backoff(30, lambda: 0.5) == 6 * 3600
    assert webhooks.backoff(1, lambda: 0.0) == 22
    assert webhooks.backoff(1, lambda: 0.999) == 37
    waited, attempts = 0, 0
    while waited < RETRY_WINDOW:
        attempts += 1
        waited += webhooks.backoff(attempts, lambda: 0.5)
    assert 15 <= attempts <= 25


def test_a_timeout_is_a_failure_that_is_retried(world: World, receiver: Receiver) -> None:
    endpoint = _endpoint(world, receiver, "customer.created")
    receiver.script[:] = [("sleep", 1.5)]
    _new_customer(world, 52)
    assert _deliver(world, timeout=0.3) == 1
    ((delivery, (attempt,)),) = run(Webhooks(world.store).deliveries(world.acme.id, endpoint.id))
    assert (delivery.state, attempt.status_code) == ("pending", None)
    assert attempt.error == "no answer within 0.3 s"
    world.clock.advance(30)
    assert _deliver(world, timeout=0.3) == 1
    assert _log(world, endpoint)[0][1] == "delivered"


def test_redirects_are_never_followed(world: World, receiver: Receiver) -> None:
    endpoint = _endpoint(world, receiver, "customer.created")
    receiver.script[:] = [("redirect", "/elsewhere")]
    _new_customer(world, 53)
    assert _deliver(world) == 1
    assert [r.path for r in receiver.received] == ["/hooks"]
    ((delivery, (attempt,)),) = run(Webhooks(world.store).deliveries(world.acme.id, endpoint.id))
    assert (delivery.state, attempt.status_code) == ("pending", 302)
    assert "redirects are not followed" in attempt.error


def test_private_and_loopback_addresses_are_refused_outside_test_mode(world: World, receiver: Receiver) -> None:
    for url in (
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/x",
        "https://[::1]/x",
        "https://169.254.169.254/latest",
        "https://localhost/x",
        "https://user:pw@example.com/x",
    ):
        with pytest.raises(Refused):
            webhooks.check_url(url, test_mode=False)
    assert webhooks.check_url("https://hooks.example.com/in", test_mode=False) == "https://hooks.example.com/in"
    assert webhooks.check_url("http://127.0.0.1:8080/in", test_mode=True) == "http://127.0.0.1:8080/in"
    with pytest.raises(Refused):
        webhooks.check_url("http://hooks.example.com/in", test_mode=True)  # http only to loopback
    with pytest.raises(Refusal, match="private or loopback"):
        asyncio.run(webhooks.public_address("localhost", 443))

    # An endpoint saved in test mode, then delivered by a deliverer outside it: the address is checked
    # after resolution, and nothing is sent.
    endpoint = _endpoint(world, receiver, "customer.created")
    https = receiver.url.replace("http://", "https://")
    run(world.store.write(lambda conn: outbox.update_endpoint(conn, world.acme.id, endpoint.id, {"url": https})))
    _new_customer(world, 54)
    assert _deliver(world, test_mode=False) == 1
    assert receiver.received == []
    ((delivery, (attempt,)),) = run(Webhooks(world.store).deliveries(world.acme.id, endpoint.id))
    assert delivery.state == "pending"
    assert "private or loopback address (127.0.0.1)" in attempt.error


def test_a_rotated_secret_and_the_previous_one_both_sign_during_the_overlap(world: World, receiver: Receiver) -> None:
    endpoint = _endpoint(world, receiver, "customer.created")
    rotated = run(
        Webhooks(world.store).rotate(world.acme.id, endpoint.id, overlap=3600, actor=CLI, now=world.clock.now)
    )
    receiver.secrets.append(rotated.secret)
    _new_customer(world, 55)
    _deliver(world)
    assert receiver.received[-1].verified_by == [0, 1]  # a receiver with either secret accepts it
    assert len(receiver.received[-1].signature.split()) == 2
    world.clock.advance(3601)
    _new_customer(world, 56)
    _deliver(world)
    assert receiver.received[-1].verified_by == [1]  # the overlap is over: the new secret only
    assert len(receiver.received[-1].signature.split()) == 1


def test_one_objects_events_arrive_in_order(world: World, receiver: Receiver) -> None:
    _endpoint(world, receiver, "invoice.created", "invoice.issued", "invoice.voided")
    receiver.script[:] = [500]
    invoice = run(factories.invoice(world.store, world.acme.id, 1234, now=world.clock.now))
    run(world.billing.write(world.acme.id, lambda books: books.void_invoice(invoice.id), now=world.clock.now))
    assert _deliver(world) == 1  # created failed; issued and voided wait behind it
    assert receiver.types() == ["invoice.created"]
    world.clock.advance(30)
    assert _deliver(world) == 3
    assert receiver.types() == ["invoice.created", "invoice.created", "invoice.issued", "invoice.voided"]


def test_a_claim_left_by_a_dead_process_is_taken_over_after_its_lease(world: World, receiver: Receiver) -> None:
    _endpoint(world, receiver, "customer.created")
    _new_customer(world, 57)
    # A process claims the delivery, then is killed before it sends (kill -9): its lease runs out.
    claimed = run(world.store.write(lambda conn: outbox.claim(conn, now=world.clock.now, limit=10, lease=60)))
    assert len(claimed) == 1
    assert _deliver(world) == 0
    world.clock.advance(60)
    assert _deliver(world) == 1
    assert len(receiver.received) == 1


def test_an_endpoint_failing_for_three_days_is_disabled(world: World, receiver: Receiver) -> None:
    endpoint = _endpoint(world, receiver, "customer.created")
    receiver.script[:] = [500] * 100
    _new_customer(world, 58)
    _deliver(world)
    world.clock.advance(RETRY_WINDOW)
    _deliver(world)
    (found,) = run(Webhooks(world.store).endpoints(world.acme.id))
    assert not found.enabled
    assert "three days" in found.disabled_reason
    assert _log(world, endpoint)[0][1] == "failed"
    _new_customer(world, 59)  # a disabled endpoint gets no new events
    assert len(_log(world, endpoint)) == 1
    found = run(Webhooks(world.store).change(world.acme.id, endpoint.id, enabled=True, actor=CLI, now=world.clock.now))
    assert found.enabled
    assert not found.disabled_reason


def test_redeliver_one_event_or_every_failed_one_since_a_time(world: World, receiver: Receiver) -> None:
    endpoint = _endpoint(world, receiver, "customer.created")
    service = Webhooks(world.store)
    _new_customer(world, 60)
    _deliver(world)
    event_id = receiver.received[0].webhook_id
    assert run(service.redeliver(world.acme.id, endpoint.id, event_id=event_id, actor=CLI, now=world.clock.now)) == 1
    _deliver(world)
    assert receiver.counts()[event_id] == 2  # the same webhook-id: receivers can tell a redelivery
    receiver.script[:] = [500] * 100
    since = world.clock.now
    _new_customer(world, 61)
    _new_customer(world, 62)
    _deliver(world)
    world.clock.advance(RETRY_WINDOW)
    _deliver(world)
    assert [state for _, state, _, _ in _log(world, endpoint)] == ["failed", "failed", "delivered"]
    receiver.script.clear()  # the receiver is fixed: the endpoint (disabled meanwhile) is turned on again
    run(service.change(world.acme.id, endpoint.id, enabled=True, actor=CLI, now=world.clock.now))
    assert run(service.redeliver(world.acme.id, endpoint.id, failed_since=since, actor=CLI, now=world.clock.now)) == 2
    _deliver(world)
    assert [state for _, state, _, _ in _log(world, endpoint)] == ["delivered"] * 3


def test_a_thousand_changes_while_the_receiver_is_down_arrive_once_each_when_it_is_up(world: World) -> None:
    with socket.socket() as probe:  # a port where nothing listens: the receiver is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks"
    shown = run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now, url=url))

    async def changes() -> None:
        for customer_id in range(10_000, 11_000):
            await world.billing.create_customer(
                world.acme.id, {"id": customer_id, "name": "Later"}, now=world.clock.now
            )

    run(changes())
    assert _deliver(world) == 1000  # each tried once, each refused
    with receiving(shown.secret, port=port) as receiver:
        world.clock.advance(30)
        assert _deliver(world) == 1000
        counts = receiver.counts()
        assert len(counts) == 1000
        assert set(counts.values()) == {1}
        assert all(r.verified_by == [0] for r in receiver.received)
        assert sorted(r.body["data"]["object"]["id"] for r in receiver.received) == list(range(10_000, 11_000))
    assert _deliver(world) == 0
