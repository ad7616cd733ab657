"""An emailed sign-in link's button, pressed at once on two app processes over PostgreSQL, signs in once.

Each trial issues a fresh link (services/email_links.py, as the email form does), then releases a burst
of presses of its button, alternating the two processes. The link's single use is one conditional
UPDATE in the transaction that writes the session: exactly one press gets a session cookie, every
other is refused (401), none is a 5xx, and the database holds one session. The same holds for the
link's code typed on two devices at once, and for wrong codes guessed at once: never more than
the code's five tries are spent.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import httpx
import pytest
from sqlalchemy import Connection, func, select

from billportal.core.config import Settings
from billportal.services import email_links
from billportal.storage import companies, open_store
from billportal.storage import schema as t
from billportal.storage.store import Store
from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet

TRIALS: Final = 12
BURST: Final = 6
TIMEOUT: Final = 20.0
COOKIE: Final = "__Host-bp_session"
EMAIL: Final = "race@example.com"


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    # Every refused press counts as a failure of one address (127.0.0.1): a limit the bursts never reach.
    fleet = start_fleet(
        tmp_path_factory.mktemp("email"),
        new_postgres_database(postgres.url),
        redis_server.url,
        2,
        extra={"BILLPORTAL_LOGIN_FAILURES_PER_IP": "100000/minute"},
    )
    yield fleet
    for app in fleet.apps:
        app.stop()


@pytest.fixture(scope="module")
def store(fleet: Fleet) -> Iterator[Store]:
    store = open_store(Settings.from_env(fleet.env), migrate=False)
    company = asyncio.run(store.company("acme"))
    assert company is not None
    asyncio.run(store.write(lambda conn: companies.update_settings(conn, company.id, "acme", {"email_sign_in": True})))
    time.sleep(1.5)  # each process keeps its copy of the company's settings for a second
    yield store
    store.close()


def _customer(store: Store) -> tuple[int, int]:
    """acme's id and one of its customers' ids."""

    def query(conn: Connection) -> tuple[int, int]:
        c = t.customers.c
        row = conn.execute(
            select(c.company_id, c.id)
            .join(t.companies, t.companies.c.id == c.company_id)
            .where(t.companies.c.username == "acme")
            .limit(1)
        ).one()
        return int(row.company_id), int(row.id)

    return asyncio.run(store.read(query))


def _issue(store: Store) -> tuple[str, str]:
    """A fresh link's token and its code."""
    company_id, customer_id = _customer(store)
    made = email_links.Secrets.new()
    asyncio.run(
        store.write(
            lambda conn: email_links.issue_in(
                conn,
                company_id=company_id,
                username="acme",
                customer_id=customer_id,
                email=EMAIL,
                now=int(time.time()),
                base_url="http://localhost",
                made=made,
            )
        )
    )
    return made.token, made.code


def _sessions(store: Store) -> int:
    count: int = asyncio.run(
        store.read(lambda conn: conn.execute(select(func.count()).select_from(t.sessions)).scalar_one())
    )
    return count


def _burst(fleet: Fleet, path: str, forms: list[dict[str, str]]) -> list[httpx.Response]:
    """Each form posted at one moment, alternating the two processes."""
    barrier = threading.Barrier(len(forms))
    no_reuse = httpx.Limits(max_keepalive_connections=0)

    def send(slot: int) -> httpx.Response:
        port = fleet.apps[slot % 2].port
        with httpx.Client(timeout=TIMEOUT, limits=no_reuse) as client:
            barrier.wait(timeout=TIMEOUT)
            return client.post(
                f"http://127.0.0.1:{port}{path}",
                data=forms[slot],
                headers={"host": f"acme.localhost:{port}"},
            )

    with ThreadPoolExecutor(len(forms)) as pool:
        return list(pool.map(send, range(len(forms))))


def _signed_in(answer: httpx.Response) -> bool:
    return answer.status_code == 303 and COOKIE in answer.cookies


def test_the_button_pressed_at_once_on_two_processes_signs_in_once(fleet: Fleet, store: Store) -> None:
    for trial in range(TRIALS):
        before = _sessions(store)
        token, _code = _issue(store)
        form = {"token": token, "button": email_links.button_token(token)}
        answers = _burst(fleet, "/login/email/confirm", [form] * BURST)
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [303] + [401] * (BURST - 1), (trial, statuses)
        assert sum(_signed_in(a) for a in answers) == 1
        assert _sessions(store) == before + 1


def test_the_code_typed_at_once_on_two_processes_signs_in_once(fleet: Fleet, store: Store) -> None:
    for trial in range(TRIALS // 2):
        before = _sessions(store)
        _token, code = _issue(store)
        answers = _burst(fleet, "/login/code", [{"email": EMAIL, "code": code}] * BURST)
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [303] + [401] * (BURST - 1), (trial, statuses)
        assert _sessions(store) == before + 1


def test_wrong_codes_guessed_at_once_spend_no_more_than_five_tries(fleet: Fleet, store: Store) -> None:
    for _trial in range(TRIALS // 2):
        _token, code = _issue(store)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        answers = _burst(fleet, "/login/code", [{"email": EMAIL, "code": wrong}] * 8)
        assert all(a.status_code == 401 for a in answers)
        tries = asyncio.run(
            store.read(
                lambda conn: list(
                    conn.execute(select(t.email_sign_ins.c.tries).where(t.email_sign_ins.c.used_at.is_(None)))
                    .scalars()
                    .all()
                )
            )
        )
        assert max(tries) <= email_links.MAX_TRIES
        # Every live link of the address is now spent: the right code no longer works either.
        dead = _burst(fleet, "/login/code", [{"email": EMAIL, "code": code}] * 2)
        assert all(a.status_code == 401 for a in dead)
