"""On PostgreSQL: a lock wait that runs out and a server that is gone are "unavailable"; a wrong query is a bug.

The backend is driven directly, on a private server, so that the causes are real
PostgreSQL errors (the embedded twin is tests/unit/storage/test_failures.py).
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from billportal.core.errors import Refused, StorageUnavailable
from billportal.storage import migrate_url
from billportal.storage.postgres import PostgresBackend
from tests.browser.conftest import free_port
from tests.conftest import new_postgres_database
from tests.scaleout.conftest import PrivatePostgres


@pytest.fixture
def database(postgres: PrivatePostgres) -> str:
    url = new_postgres_database(postgres.url)
    migrate_url(url)
    return url


def test_a_wrong_query_is_a_bug_not_an_outage(database: str) -> None:
    backend = PostgresBackend(database, pool_size=0)

    async def wrong() -> None:
        await backend.read(lambda conn: conn.execute(text("SELECT nope FROM customers")).all())

    with pytest.raises(sa_exc.ProgrammingError, match="nope"):
        asyncio.run(wrong())


def test_a_lock_held_too_long_is_unavailable_with_its_cause(database: str) -> None:
    holder = psycopg.connect(database.replace("postgresql+psycopg://", "postgresql://"))
    holder.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")  # held until rollback
    backend = PostgresBackend(database, pool_size=0)

    async def blocked() -> None:
        await backend.write(lambda conn: conn.execute(text("DELETE FROM customers")))

    try:
        with pytest.raises(StorageUnavailable) as unavailable:
            asyncio.run(blocked())
    finally:
        holder.rollback()
        holder.close()
    assert "lock" in str(unavailable.value.__cause__).lower()


def test_a_server_that_is_not_there_is_unavailable() -> None:
    backend = PostgresBackend(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", pool_size=0)

    async def read() -> None:
        await backend.read(lambda conn: conn.execute(text("SELECT 1")).all())

    with pytest.raises(StorageUnavailable):
        asyncio.run(read())


def test_a_write_that_breaks_a_unique_rule_is_a_conflict_not_a_500(database: str) -> None:
    backend = PostgresBackend(database, pool_size=0)
    insert = text("INSERT INTO companies (username, name, created_at, updated_at) VALUES ('twice', 'Twice', 0, 0)")

    async def twice() -> None:
        await backend.write(lambda conn: conn.execute(insert))
        await backend.write(lambda conn: conn.execute(insert))

    with pytest.raises(Refused) as refused:
        asyncio.run(twice())
    assert refused.value.code == "conflict"
