"""Two app processes and a ``billportal mail deliver`` process share one mail queue on PostgreSQL.

Each serving process sends mail in the background; the command sends too. Rounds of messages
are queued at once; the SMTP server (aiosmtpd) receives each exactly once, and every row says
sent after one attempt.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Final

import pytest
from sqlalchemy import Connection

from billportal.core.config import Settings
from billportal.services.mail import MailKind, queue_mail
from billportal.storage import mail as queue
from billportal.storage import open_store
from tests.conftest import new_postgres_database
from tests.mail_server import MailServer, smtp_server
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet

ROUNDS: Final = 4
PER_ROUND: Final = 40


@pytest.fixture(scope="module")
def server() -> Iterator[MailServer]:
    with smtp_server() as running:
        running.delay = 0.01
        yield running


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis, server: MailServer
) -> Iterator[Fleet]:
    extra = {"BILLPORTAL_SMTP_URL": f"smtp://{server.host}:{server.port}"}
    fleet = start_fleet(
        tmp_path_factory.mktemp("mail"), new_postgres_database(postgres.url), redis_server.url, 2, extra=extra
    )
    yield fleet
    for app in fleet.apps:
        app.stop()


def _received(server: MailServer) -> Counter[str]:
    return Counter(str(r.message["Subject"]) for r in server.received if "Fleet" in str(r.message["Subject"]))


def test_each_message_is_sent_once_by_three_processes(fleet: Fleet, server: MailServer) -> None:
    command = subprocess.Popen(
        [sys.executable, "-m", "billportal", "mail", "deliver"],
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

            def burst(conn: Connection, round_: int = round_) -> None:
                for n in range(PER_ROUND):
                    queue_mail(
                        conn,
                        company_id=company.id,
                        kind=MailKind.PAYMENT_RECEIPT,
                        to=f"c{n}@example.com",
                        subject=f"Fleet {round_}-{n}",
                        text="Thank you.",
                        html="<p>Thank you.</p>",
                        now=int(time.time()),
                    )

            asyncio.run(store.write(burst))
            expected += PER_ROUND
            deadline = time.monotonic() + 60
            while sum(_received(server).values()) < expected and time.monotonic() < deadline:
                time.sleep(0.05)
            counts = _received(server)
            assert len(counts) == expected
            assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1]
        time.sleep(1)  # a second sender, had there been one, has had time to send again
        assert set(_received(server).values()) == {1}
        deadline = time.monotonic() + 30  # the last answers are being recorded
        while True:
            rows = asyncio.run(store.read(lambda conn: queue.messages(conn, company.id, limit=1000)))
            fleet_rows = [m for m in rows if m.subject.startswith("Fleet")]
            if all(m.state != "pending" for m in fleet_rows) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(fleet_rows) == ROUNDS * PER_ROUND
        assert {(m.state, m.attempts) for m in fleet_rows} == {("sent", 1)}
    finally:
        command.terminate()
        command.wait(timeout=30)
        store.close()
