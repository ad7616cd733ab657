"""What a sign-in's commit costs on this machine's disk, with billportal's own SQLite settings.

Sign-in-shaped transactions (a single-use mark, a session, a sign-in event), one
per ``BEGIN IMMEDIATE ... COMMIT``, as the group commit writes them when sign-ins
arrive one at a time, on a copy of the 1,000-customer database opened by
``billportal.storage.sqlite.connect`` (WAL, synchronous=NORMAL): once with
SQLite's default WAL auto-checkpoint (every 1,000 pages, run inside the COMMIT
that crosses it), once with it off, as billportal runs it (its Checkpointer
thread copies the WAL back every second, outside any COMMIT). The event loop
waits for each of these commits, so their tail is a floor under the sign-in's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import VAR
from bench.loadgen import percentile
from billportal.storage.sqlite import connect

_MARK = "INSERT INTO used_jtis (company_id, jti, expires_at) VALUES (?, ?, ?)"
_SESSION = (
    "INSERT INTO sessions (id_hash, company_id, customer_id, csrf_token, created_at, last_seen_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_EVENT = (
    "INSERT INTO sign_in_events (company_id, at, result, reason, customer_id, issuer, kid, jti, ip, user_agent)"
    " VALUES (?, ?, 'success', 'ok', ?, 'bench-backend', 'sso_bench', ?, '127.0.0.1', 'billportal-bench')"
)


def _run(source: Path, commits: int, autocheckpoint: int) -> dict[str, Any]:
    work = VAR / "run" / "commit-latency"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    database = work / "billportal.sqlite3"
    shutil.copy2(source, database)
    conn = connect(database)
    timings: list[float] = []
    try:
        conn.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
        company = int(conn.execute("SELECT id FROM companies ORDER BY id LIMIT 1").fetchone()[0])
        now = int(time.time())
        for n in range(commits):
            jti = os.urandom(12).hex()
            customer = 1 + n % 1000
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_MARK, (company, jti, now + 3600))
            conn.execute(
                _SESSION,
                (hashlib.sha256(os.urandom(32)).digest(), company, customer, "c" * 32, now, now, now + 43_200),
            )
            conn.execute(_EVENT, (company, now, customer, jti))
            conn.execute("COMMIT")
            timings.append(time.perf_counter() - started)
    finally:
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    timings.sort()
    return {
        "commits": commits,
        "p50_ms": round(percentile(timings, 50) * 1000, 3),
        "p99_ms": round(percentile(timings, 99) * 1000, 3),
        "p999_ms": round(percentile(timings, 99.9) * 1000, 3),
        "max_ms": round(timings[-1] * 1000, 3),
        "over_5ms": sum(1 for t in timings if t > 0.005),
    }


def measure(source: Path, commits: int) -> dict[str, Any]:
    return {
        "default_autocheckpoint": _run(source, commits, 1000),
        "autocheckpoint_off": _run(source, commits, 0),
    }
