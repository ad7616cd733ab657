"""Fixtures shared by every suite: a real app on a real SQLite file, and its HTTP clients.

Nothing here mocks billportal's storage: each test gets a fresh database file
in a temporary folder, migrated by the same code ``billportal db upgrade`` runs.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import jwt
import pytest
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.core.config import Settings
from billportal.services.billing import Billing
from billportal.storage import migrate_url, open_store
from billportal.storage.records import Company
from billportal.storage.schema import metadata
from billportal.storage.store import Store
from tests import factories

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


# One event loop, on its own thread, for the whole run: every store call of a test (run below)
# and every request of its in-process clients run there. A pool's connections belong to the
# loop that made them, so with a loop per request (the test client's default) each storage
# call would connect to PostgreSQL afresh; on one loop the store keeps its pool, as served.
_start_blocking_portal = anyio.from_thread.start_blocking_portal


class _OneLoop:
    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._portal: anyio.from_thread.BlockingPortal | None = None

    def portal(self) -> anyio.from_thread.BlockingPortal:
        if self._portal is None:
            self._portal = self._stack.enter_context(_start_blocking_portal())
        return self._portal

    def close(self) -> None:
        self._stack.close()
        self._portal = None


_LOOP = _OneLoop()


def the_loop() -> anyio.from_thread.BlockingPortal:
    """The run's one event loop (started on first use)."""
    return _LOOP.portal()


@contextlib.contextmanager
def _on_the_loop(**_: Any) -> Iterator[anyio.from_thread.BlockingPortal]:
    yield the_loop()


@pytest.fixture(scope="session", autouse=True)
def one_event_loop() -> Iterator[None]:
    """Starlette's test clients take the run's one loop instead of starting one per request."""
    patch = pytest.MonkeyPatch()
    patch.setattr(anyio.from_thread, "start_blocking_portal", _on_the_loop)
    yield
    patch.undo()
    _LOOP.close()


async def _awaited(coro: Coroutine[Any, Any, T]) -> T:
    return await coro


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a store coroutine from a synchronous test, on the run's one event loop."""
    result: T = the_loop().call(_awaited, coro)
    return result


# The scale-out run (make test's second pass) sets these: every test then runs on
# PostgreSQL and Redis instead of SQLite and in-process state.
SCALE_OUT_DATABASE = os.environ.get("BILLPORTAL_TEST_DATABASE_URL", "")
SCALE_OUT_REDIS = os.environ.get("BILLPORTAL_TEST_REDIS_URL", "")
# Several processes over PostgreSQL and Redis: only in the scale-out pass.
collect_ignore = [] if SCALE_OUT_DATABASE else ["scaleout"]


def new_postgres_database(admin_url: str) -> str:
    """Create an empty database next to ``admin_url``'s; return its SQLAlchemy URL."""
    import psycopg

    name = f"bp_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def scale_out_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the run; tests empty it between them."""
    if not SCALE_OUT_DATABASE:
        yield ""
        return
    url = new_postgres_database(SCALE_OUT_DATABASE)
    migrate_url(url)
    yield url
    drop_postgres_database(SCALE_OUT_DATABASE, url)


def _empty_postgres(url: str) -> None:
    import psycopg

    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def empty_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


@pytest.fixture
def settings(tmp_path: Path, scale_out_database: str) -> Settings:
    if scale_out_database:
        _empty_postgres(scale_out_database)
        if SCALE_OUT_REDIS:
            empty_redis(SCALE_OUT_REDIS)
        return Settings(
            data_dir=tmp_path,
            master_key=MASTER_KEY,
            public_url="https://localhost",
            database_url=scale_out_database,
            redis_url=SCALE_OUT_REDIS,
        )
    return Settings(data_dir=tmp_path, master_key=MASTER_KEY, public_url="https://localhost")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings, migrate=not settings.database_url)
    yield store
    run(store.aclose())  # on the loop its pools' connections belong to


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

    @property
    def billing(self) -> Billing:
        """The billing service over this world's store."""
        return Billing(self.store)

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
        acme = await factories.company(store, "acme", ACME_KEY, name="Acme Corporation", now=now)
        globex = await factories.company(store, "globex", GLOBEX_KEY, name="Globex", now=now)
        await factories.customer(store, acme.id, id=1234, name="Wile E. Coyote", email="wile@example.com", now=now)
        await factories.customer(store, acme.id, id=1235, name="Road Runner", now=now)
        await factories.customer(store, acme.id, id=1234567890, name="Seed Sample", now=now)
        await factories.customer(store, globex.id, id=1234, name="Hank Scorpio", now=now)
        await factories.customer(store, globex.id, id=77, name="Homer Simpson", now=now)
        for company_id, customer_id, number in [
            (acme.id, 1234, "INV-0001"),
            (acme.id, 1234, "INV-0002"),
            (acme.id, 1235, "INV-0003"),
            (globex.id, 1234, "GLX-0001"),
        ]:
            await factories.invoice(store, company_id, customer_id, number=number, due_on="2026-12-01", now=now)

    run(go())


def seed_world(store: Store, clock: Clock, settings: Settings) -> World:
    """Acme and Globex with their customers and invoices, on an empty store."""
    _seed(store, clock.now)
    acme = run(store.company("acme"))
    globex = run(store.company("globex"))
    assert acme is not None
    assert globex is not None
    return World(store, clock, settings, acme, globex)


@pytest.fixture
def world(store: Store, clock: Clock, settings: Settings) -> World:
    return seed_world(store, clock, settings)


@pytest.fixture
def token_factory(world: World) -> Callable[..., str]:
    return world.token


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    """A localstripe process (fake Stripe) for this module; its base URL. See tests/stripe_support.py."""
    from tests.stripe_support import running_localstripe

    with running_localstripe() as url:
        yield url


_JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")


class _EveryLogLine(logging.Handler):
    """Keeps every log line written in this test process, whatever its logger or level."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # httpx and httpcore are the tests' own HTTP clients (the browser's side): they log URLs.
        if record.name.split(".")[0] not in ("httpx", "httpcore"):
            self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="session", autouse=True)
def no_token_in_any_log() -> Iterator[None]:
    """After the whole suite, no sign-in token appears in anything billportal logged."""
    handler = _EveryLogLine()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(handler)
    root.setLevel(previous)
    leaked = [line for line in handler.lines if _JWT_SHAPE.search(line)]
    assert not leaked, f"{len(leaked)} log lines hold a token, e.g. {leaked[0][:80]!r}"
