"""Cards saved at once, through two app processes, for one customer who has no Stripe customer yet: one is kept.

The demo company is switched to Stripe (localstripe, run as a process) with the CLI.
Each trial signs a new customer in, then releases a burst of saved-card submissions,
each with its own card, spread over two ``billportal serve`` processes sharing one
PostgreSQL database. Every submission must save its card; the database must then hold
one gateway customer for the customer, and every card must be attached, at the
gateway, to that one Stripe customer.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import httpx
import pytest
import stripe
from sqlalchemy import select

from billportal.core.config import Settings
from billportal.storage import open_store
from billportal.storage.schema import gateway_customers, payment_methods
from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet
from tests.scaleout.test_concurrency import Api
from tests.stripe_support import card_payment_method

TRIALS: Final = 5
BURST: Final = 6  # at most MAX_SAVED_METHODS (10) cards per customer
TIMEOUT: Final = 30.0
FIRST_CUSTOMER: Final = 880_000


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis, localstripe: str
) -> Iterator[Fleet]:
    database = new_postgres_database(postgres.url)
    fleet = start_fleet(tmp_path_factory.mktemp("gateway-customers"), database, redis_server.url, 2)
    env = {
        **fleet.env,
        "BILLPORTAL_GATEWAY_SECRET_KEY": "sk_test_billportal",
        "BILLPORTAL_GATEWAY_WEBHOOK_SECRET": "whsec_test_billportal",
    }
    configure = [
        *("payments", "configure", "--tenant", "acme", "--gateway", "stripe", "--test-mode", "off"),
        *("--publishable-key", "pk_test_billportal", "--api-base", localstripe, "--allow-saved-methods", "on"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "billportal", *configure], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    yield fleet
    for app in fleet.apps:
        app.stop()


def _stored(fleet: Fleet, customer_id: int) -> tuple[list[str], list[str], int]:
    """The customer's gateway customers, saved cards' references and default cards, as the database holds them."""
    store = open_store(Settings.from_env(fleet.env), migrate=False)

    def read(conn: Any) -> tuple[list[str], list[str], int]:
        g, m = gateway_customers.c, payment_methods.c
        kept = conn.execute(select(g.gateway_customer_id).where(g.customer_id == customer_id)).scalars()
        refs = conn.execute(select(m.gateway_ref).where(m.customer_id == customer_id)).scalars()
        defaults = conn.execute(select(m.id).where(m.customer_id == customer_id, m.is_default)).scalars()
        return list(kept), list(refs), len(list(defaults))

    try:
        return asyncio.run(store.read(read))
    finally:
        store.close()


def _save_burst(fleet: Fleet, cookie: str, csrf: str, cards: list[str]) -> list[httpx.Response]:
    """One saved-card submission per card, all at one moment, alternating the two processes."""
    barrier = threading.Barrier(len(cards))
    no_reuse = httpx.Limits(max_keepalive_connections=0)

    def send(slot: int) -> httpx.Response:
        port = fleet.apps[slot % 2].port
        with httpx.Client(timeout=TIMEOUT, limits=no_reuse) as client:
            barrier.wait(timeout=TIMEOUT)
            return client.post(
                f"http://127.0.0.1:{port}/payment-methods",
                data={"csrf_token": csrf, "payment_method": cards[slot]},
                headers={"host": f"acme.localhost:{port}", "cookie": f"__Host-bp_session={cookie}"},
            )

    with ThreadPoolExecutor(len(cards)) as pool:
        return list(pool.map(send, range(len(cards))))


def test_cards_saved_at_once_for_one_customer_share_one_gateway_customer(fleet: Fleet, localstripe: str) -> None:
    created = json.loads(fleet.cli("api-key", "create", "--tenant", "acme", "--name", "gateway customer tests"))
    api = Api(fleet, created["key"])
    stripe_api: Any = stripe.StripeClient("sk_test_billportal", base_addresses={"api": localstripe}).v1
    problems: dict[int, list[str]] = {}
    try:
        for trial in range(TRIALS):
            customer_id = FIRST_CUSTOMER + trial + int.from_bytes(os.urandom(2), "big") * 100
            api.create("/customers", {"id": customer_id, "name": f"Racing customer {trial}"})
            first = fleet.apps[0]
            cookie = first.get(f"/login/{fleet.token(customer_id)}").cookies["__Host-bp_session"]
            page = first.get("/payment-methods", cookie=cookie).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert csrf is not None
            cards = [card_payment_method(localstripe, "4242424242424242") for _ in range(BURST)]
            answers = _save_burst(fleet, cookie, csrf[1], cards)
            wrong = []
            statuses = sorted(a.status_code for a in answers)
            if statuses != [303] * BURST:
                wrong.append(f"answers {statuses}: {next((a.text[:200] for a in answers if a.status_code != 303), '')}")
            kept, refs, defaults = _stored(fleet, customer_id)
            if defaults != 1:
                wrong.append(f"{defaults} default cards")
            if len(kept) != 1:
                wrong.append(f"{len(kept)} gateway customers kept")
            elif {ref.partition(":")[0] for ref in refs} != set(kept) or len(refs) != BURST:
                wrong.append(f"{len(refs)} cards saved, on {sorted({r.partition(':')[0] for r in refs})}, kept {kept}")
            else:
                attached = stripe_api.payment_methods.list(params={"customer": kept[0], "type": "card"})
                if sorted(pm.id for pm in attached.data) != sorted(cards):
                    wrong.append("the cards are not all attached to the kept Stripe customer")
            if wrong:
                logged = [line for app in fleet.apps for line in app.log.read_text(errors="replace").splitlines()]
                problems[trial] = wrong + [line for line in logged if "ERROR" in line or "Error" in line][-10:]
    finally:
        api.close()
    assert not problems, f"{len(problems)} of {TRIALS} trials went wrong: {problems}"
