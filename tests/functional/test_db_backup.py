"""``billportal db backup`` / ``db restore`` and the start-up integrity check, on the embedded database.

Real processes: a ``billportal serve`` on SQLite, and the CLI beside it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.browser.conftest import free_port
from tests.server_process import Embedded


@pytest.fixture
def embedded(tmp_path: Path) -> Embedded:
    return Embedded(tmp_path / "data")


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def _damage(database: Path) -> None:
    """Overwrite pages in the middle of the file, as a failing disk or a bad copy would."""
    size = database.stat().st_size
    with database.open("r+b") as handle:
        handle.seek(size // 2 - (size // 2) % 4096)
        handle.write(b"\xff" * 8192)


def test_backup_while_serving_then_restore_after_stopping(embedded: Embedded, tmp_path: Path) -> None:
    embedded.app.start()
    try:
        before = embedded.sign_in()
        backup = tmp_path / "backup.sqlite3"
        made = embedded.cli("db", "backup", str(backup))
        assert made.returncode == 0, made.stderr
        assert backup.stat().st_mode & 0o777 == 0o600
        after = embedded.sign_in()

        refused = embedded.cli("db", "restore", str(backup))
        _one_line_error(refused, "running", "stop it")
        assert embedded.signed_in(after)  # nothing was touched
    finally:
        embedded.app.stop()

    restored = embedded.cli("db", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "kept as" in restored.stdout
    assert not embedded.database.with_name("billportal.sqlite3-shm").exists()
    assert list(embedded.data.glob("billportal.sqlite3.replaced-*"))

    embedded.app.start()
    try:
        assert embedded.signed_in(before)  # in the backup
        assert not embedded.signed_in(after)  # made after it: gone with the restore
    finally:
        embedded.app.stop()


def test_serve_refuses_a_damaged_database_with_one_line(embedded: Embedded) -> None:
    _damage(embedded.database)
    started = embedded.cli("serve", "--port", str(free_port()), timeout=30)  # it must not start serving
    _one_line_error(started, "damaged", "db restore")
    assert "malformed" in started.stderr or "btree" in started.stderr.lower() or "page" in started.stderr.lower()


def test_restore_checks_the_backup_before_touching_the_database(embedded: Embedded, tmp_path: Path) -> None:
    backup = tmp_path / "backup.sqlite3"
    assert embedded.cli("db", "backup", str(backup)).returncode == 0
    original = embedded.database.read_bytes()

    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(backup.read_bytes())
    _damage(damaged)
    _one_line_error(embedded.cli("db", "restore", str(damaged)), "damaged")

    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database at all\n" * 100)
    _one_line_error(embedded.cli("db", "restore", str(not_sqlite)), "not a readable SQLite database")

    foreign = tmp_path / "foreign.sqlite3"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    _one_line_error(embedded.cli("db", "restore", str(foreign)), "not a billportal database")

    _one_line_error(embedded.cli("db", "restore", str(tmp_path / "missing.sqlite3")), "no backup")
    _one_line_error(embedded.cli("db", "backup", str(backup)), "already exists")

    assert embedded.database.read_bytes() == original
    assert not list(embedded.data.glob("billportal.sqlite3.replaced-*"))
    assert not list(embedded.data.glob(".billportal.sqlite3.restoring-*"))


# The log's limits at a tenth of the shipped ones or less (sqlite.WAL_SIZE_LIMIT, sqlite.RESTART_BYTES), so
# that a test writes tens of megabytes rather than gigabytes; the mechanism is the same.
SMALL_WAL_LIMIT = 64 * 1024 * 1024
SMALL_RESTART_BYTES = 16 * 1024 * 1024


def test_the_wal_shrinks_back_after_a_burst_of_writes(tmp_path: Path) -> None:
    from billportal.storage.sqlite import SQLiteBackend

    backend = SQLiteBackend(tmp_path / "billportal.sqlite3", wal_size_limit=SMALL_WAL_LIMIT)
    wal = tmp_path / "billportal.sqlite3-wal"
    try:
        conn = backend.conn
        conn.execute("CREATE TABLE burst (payload BLOB)")
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(600):
            conn.execute("INSERT INTO burst VALUES (randomblob(131072))")  # 75 MiB in one transaction
        conn.execute("COMMIT")
        assert wal.stat().st_size > SMALL_WAL_LIMIT
        deadline = time.monotonic() + 10
        while wal.stat().st_size > SMALL_WAL_LIMIT:
            assert time.monotonic() < deadline, wal.stat().st_size
            time.sleep(0.5)  # the checkpointer copies the WAL back; the next write starts it over
            conn.execute("INSERT INTO burst VALUES (x'00')")
    finally:
        backend.close()


def test_the_wal_starts_over_under_steady_writes(tmp_path: Path) -> None:
    """Commits back to back leave a passive checkpoint no moment to catch up: the log still starts over."""
    from billportal.storage.sqlite import Checkpointer, SQLiteBackend

    backend = SQLiteBackend(
        tmp_path / "billportal.sqlite3", wal_size_limit=SMALL_WAL_LIMIT, restart_bytes=SMALL_RESTART_BYTES
    )
    wal = tmp_path / "billportal.sqlite3-wal"
    rows = 64
    written = largest = 0

    def change(row: int) -> Callable[[sqlite3.Connection], object]:
        return lambda conn: conn.execute("UPDATE steady SET payload = randomblob(65536) WHERE id = ?", (row,))

    async def write_steadily() -> None:
        nonlocal written, largest
        deadline = time.monotonic() + 60
        row = 0
        while written < 3 * SMALL_WAL_LIMIT and time.monotonic() < deadline:
            # Four writes of 64 KiB each (some 70 pages of log) share a commit, one commit after another.
            changes = [backend.writes.submit(change((row + i) % rows)) for i in range(4)]
            await asyncio.gather(*changes)
            row += 4
            written += 4 * 65536
            largest = max(largest, wal.stat().st_size)

    try:
        conn = backend.conn
        conn.execute("CREATE TABLE steady (id INTEGER PRIMARY KEY, payload BLOB)")
        conn.executemany("INSERT INTO steady VALUES (?, zeroblob(65536))", [(i,) for i in range(rows)])
        backend.checkpointer.stop()
        # Ten turns a second: less log between two.
        backend.checkpointer = Checkpointer(
            backend.path, interval=0.1, restart_bytes=SMALL_RESTART_BYTES, wal_size_limit=SMALL_WAL_LIMIT
        )
        asyncio.run(write_steadily())
    finally:
        backend.close()
    assert written >= 3 * SMALL_WAL_LIMIT, written  # without the restarts, the log would hold all of it
    assert largest < SMALL_WAL_LIMIT, (largest, written)  # the restart threshold and what a turn adds
