"""SQLite's group commit: a quiet server commits at once; under load, writes of several turns share a commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from billportal.storage.sqlite import SQLiteBackend


def test_a_lone_write_commits_at_once_and_writes_close_behind_it_share_the_next_commit(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "db.sqlite3")
    backend.conn.execute("CREATE TABLE t (a INTEGER)")
    statements: list[str] = []
    backend.conn.set_trace_callback(statements.append)

    def insert(value: int) -> asyncio.Future[int]:
        return backend.writes.submit(lambda conn: conn.execute("INSERT INTO t VALUES (?)", (value,)).rowcount)

    async def writes() -> tuple[bool, int]:
        first = insert(0)
        await asyncio.sleep(0)  # one turn of the loop
        at_once = first.done()
        await first
        statements.clear()
        # Five requests, each in its own turn of the loop, right after that commit.
        behind = []
        for value in range(1, 6):
            behind.append(insert(value))
            await asyncio.sleep(0)
        await asyncio.gather(*behind)
        return at_once, statements.count("COMMIT")

    try:
        at_once, commits = asyncio.run(writes())
        assert at_once  # a quiet server does not wait
        assert commits < 5, commits  # one per turn before the window
        assert backend.conn.execute("SELECT count(*) FROM t").fetchone() == (6,)
    finally:
        backend.close()
