"""Fixtures shared by every suite: a real app on a real SQLite file, and its HTTP clients.

Nothing here mocks billportal's storage: each test gets a fresh database file
in a temporary folder, migrated by the same code ``billportal db upgrade`` runs.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jwt
import pytest
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.config import Settings
from billportal.storage import open_store
from billportal.storage.records import Company, LineInput
from billportal.storage.store import Store

MASTER_KEY = base64.urlsafe_b64decode("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
ACME_KEY = "acme-sso-key-0123456789abcdefghijklmnop"  # 39 bytes: not weak
T = TypeVar("T")

GLOBEX_KEY = "globex-sso-key-0123456789abcdefghijklmn"


class Clock:
    """A clock the tests can move; starts at the real time."""

    def __init__(self) -> None:
        self.now = int(time.time())

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a store coroutine from a synchronous test."""
    return asyncio.run(coro)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, master_key=MASTER_KEY)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    yield store
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class World:
    """Two companies with customers and invoices, for tests across tenants."""

    store: Store
    clock: Clock
    settings: Settings
    acme: Company
    globex: Company

    def company(self, username: str) -> Company:
        self.store.forget_company(username)
        company = run(self.store.company(username))
        assert company is not None
        return company

    def token(self, claims: dict[str, Any] | None = None, key: str = ACME_KEY, **header: Any) -> str:
        payload: dict[str, Any] = {"sub": 1234, "iss": "Ruby Backend", "exp": self.clock.now + 3600}
        if claims is not None:
            payload = claims
        return jwt.encode(payload, key, algorithm="HS256", headers=header or None)

    def client(self, company: str = "acme", **kwargs: Any) -> TestClient:
        app = build_app(self.settings, self.store, self.clock)
        return TestClient(app, base_url=f"https://{company}.localhost", follow_redirects=False, **kwargs)


def _seed(store: Store, now: int) -> None:
    async def go() -> None:
        acme_id, _ = await store.create_company("acme", "Acme Corporation", ACME_KEY, weak=False, now=now)
        globex_id, _ = await store.create_company("globex", "Globex", GLOBEX_KEY, weak=False, now=now)
        await store.create_customer(acme_id, "Wile E. Coyote", now=now, customer_id=1234, email="wile@example.com")
        await store.create_customer(acme_id, "Road Runner", now=now, customer_id=1235)
        await store.create_customer(acme_id, "Seed Sample", now=now, customer_id=1234567890)
        await store.create_customer(globex_id, "Hank Scorpio", now=now, customer_id=1234)
        await store.create_customer(globex_id, "Homer Simpson", now=now, customer_id=77)
        for company_id, customer_id, number in [
            (acme_id, 1234, "INV-0001"),
            (acme_id, 1234, "INV-0002"),
            (acme_id, 1235, "INV-0003"),
            (globex_id, 1234, "GLX-0001"),
        ]:
            await store.create_invoice(
                company_id,
                customer_id,
                number=number,
                currency="USD",
                status="open",
                issued_on="2026-11-01",
                due_on="2026-12-01",
                lines=[LineInput("Rocket skates", "2", 12500), LineInput("Giant magnet", "1", 9900, tax=990)],
                now=now,
            )

    run(go())


@pytest.fixture
def world(store: Store, clock: Clock, settings: Settings) -> World:
    _seed(store, clock.now)
    acme = run(store.company("acme"))
    globex = run(store.company("globex"))
    assert acme is not None
    assert globex is not None
    return World(store, clock, settings, acme, globex)


@pytest.fixture
def token_factory(world: World) -> Callable[..., str]:
    return world.token
