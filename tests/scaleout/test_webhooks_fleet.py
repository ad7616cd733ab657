"""Two app processes and a ``billportal webhooks deliver`` process share one outbox on PostgreSQL.

Each serving process runs the deliverer in the background; the command runs another.
Rounds of events are written to the outbox at once; the receiver (a real HTTP server
verifying every signature with ``standardwebhooks``) counts them by ``webhook-id``:
each arrives exactly once, and the rows say delivered once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Final

import pytest

from billportal.core.config import Settings
from billportal.services.billing import Billing
from billportal.storage import open_store
from billportal.storage import webhooks as outbox
from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet
from tests.webhook_receiver import Receiver, receiving

ROUNDS: Final = 5
PER_ROUND: Final = 40


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        receiver.delay = 0.02
        yield receiver


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    extra = {"BILLPORTAL_WEBHOOKS_TEST_MODE": "1"}
    fleet = start_fleet(
        tmp_path_factory.mktemp("webhooks"), new_postgres_database(postgres.url), redis_server.url, 2, extra=extra
    )
    yield fleet
    for app in fleet.apps:
        app.stop()


def test_each_event_is_delivered_once_by_three_processes(fleet: Fleet, receiver: Receiver) -> None:
    added = json.loads(fleet.cli("webhooks", "add", "--tenant", "acme", "--url", receiver.url, "--events", "all"))
    receiver.secrets.append(added["secret"])
    command = subprocess.Popen(
        [sys.executable, "-m", "billportal", "webhooks", "deliver"],
        env=fleet.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = open_store(Settings.from_env(fleet.env), migrate=False)
    try:
        company = asyncio.run(store.company("acme"))
        assert company is not None
        expected = 0
        for round_ in range(ROUNDS):
            base = 5000 + round_ * PER_ROUND

            async def burst(base: int = base) -> None:
                billing = Billing(store)
                for customer_id in range(base, base + PER_ROUND):
                    await billing.create_customer(
                        company.id, {"id": customer_id, "name": f"C{customer_id}"}, now=int(time.time())
                    )

            asyncio.run(burst())
            expected += PER_ROUND
            receiver.wait_for(expected, timeout=60)
            counts = receiver.counts()
            assert len(counts) == expected
            assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1]
        assert all(r.verified_by == [0] for r in receiver.received)
        events = asyncio.run(store.read(lambda conn: outbox.events(conn, company.id, limit=10_000)))
        assert sorted(event_id for event_id, _, _ in events) == sorted(receiver.counts())
        deadline = time.monotonic() + 30  # the last answers are being recorded
        while True:
            deliveries = asyncio.run(
                store.read(lambda conn: outbox.deliveries(conn, company.id, added["id"], limit=10_000))
            )
            if all(d.state != "pending" for d in deliveries) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(deliveries) == ROUNDS * PER_ROUND
        retried = [d.id for d in deliveries if d.attempts != 1]
        tries = asyncio.run(store.read(lambda conn: outbox.attempts(conn, retried)))
        assert {(d.state, d.attempts) for d in deliveries} == {("delivered", 1)}, tries
    finally:
        command.terminate()
        command.wait(timeout=30)
        store.close()
