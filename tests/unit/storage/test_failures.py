"""Errors keep their cause: only a database that cannot answer is "unavailable"; a query's mistake is a bug."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from billportal.core.errors import Refused, StorageUnavailable
from billportal.storage.failures import is_unavailable, raise_as_storage_error
from billportal.storage.sqlite import SQLiteBackend
from billportal.storage.sqlite_files import WriterLock


def sqlite_error(sql: str, conn: sqlite3.Connection) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute(sql)
    return caught.value


def test_a_locked_database_is_unavailable_and_a_missing_column_is_a_bug(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (a INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    locked = sqlite_error("INSERT INTO t VALUES (1)", other)
    assert is_unavailable(locked)
    assert is_unavailable(sa_exc.OperationalError("INSERT", {}, locked))
    holder.execute("ROLLBACK")
    missing = sqlite_error("SELECT nope FROM t", other)
    assert not is_unavailable(missing)
    assert not is_unavailable(sa_exc.OperationalError("SELECT", {}, missing))
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        raise_as_storage_error(missing, "read")
    with pytest.raises(StorageUnavailable) as unavailable:
        raise_as_storage_error(locked, "written")
    assert unavailable.value.__cause__ is locked


def test_a_broken_unique_rule_is_a_conflict_to_retry() -> None:
    integrity = sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed: t.a"))
    with pytest.raises(Refused) as refused:
        raise_as_storage_error(integrity, "written")
    assert refused.value.code == "conflict"


def test_a_group_commit_gives_each_write_its_own_outcome(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "db.sqlite3")
    backend.conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)")

    async def batch() -> list[object]:
        writes = backend.writes
        outcomes: list[object] = await asyncio.gather(
            writes.submit(lambda conn: conn.execute("INSERT INTO t VALUES (1)").rowcount),
            writes.submit(lambda conn: conn.execute("INSERT INTO t VALUES (1)").rowcount),  # a duplicate: refused
            writes.submit(lambda conn: conn.execute("SELECT nope FROM t").fetchall()),  # a bug
            writes.submit(lambda conn: conn.execute("INSERT INTO t VALUES (2)").rowcount),
            return_exceptions=True,
        )
        return outcomes

    try:
        first, duplicate, bug, last = asyncio.run(batch())
        assert (first, last) == (1, 1)
        assert isinstance(duplicate, sqlite3.IntegrityError)
        assert isinstance(bug, sqlite3.OperationalError)
        assert "no such column" in str(bug)
        assert [row[0] for row in backend.conn.execute("SELECT a FROM t ORDER BY a")] == [1, 2]
    finally:
        backend.close()


def test_a_group_commit_waits_for_its_turn_without_stopping_the_event_loop(tmp_path: Path) -> None:
    """Another writer (a worker, the checkpointer) holds the turn: the loop goes on, the write follows it."""
    path = tmp_path / "db.sqlite3"
    backend = SQLiteBackend(path)
    backend.conn.execute("CREATE TABLE t (a INTEGER)")
    other = WriterLock(path)
    held = threading.Event()

    def hold_the_turn() -> None:
        with other.held():
            held.set()
            time.sleep(0.3)

    async def write_meanwhile() -> tuple[int, float]:
        holder = threading.Thread(target=hold_the_turn)
        holder.start()
        held.wait()
        started = time.monotonic()
        write = asyncio.ensure_future(
            backend.writes.submit(lambda conn: conn.execute("INSERT INTO t VALUES (1)").rowcount)
        )
        ticks = 0
        while not write.done():
            await asyncio.sleep(0.01)  # other requests' turns of the loop
            ticks += 1
        waited = time.monotonic() - started
        holder.join()
        assert await write == 1
        return ticks, waited

    try:
        ticks, waited = asyncio.run(write_meanwhile())
        assert waited >= 0.2  # it did wait for the turn
        assert ticks >= 10, ticks  # and the loop ran all along (a blocking wait would leave one tick at most)
        assert backend.conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    finally:
        other.close()
        backend.close()
