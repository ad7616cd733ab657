"""The dashboard's and the API's lists at scale: every page under 50 ms at p99.

The large dataset (1,000,000 customers; 100,000 with BENCH_QUICK=1) gets a sign-in log
of 10,000,000 events (1,000,000 quick) spread over 90 days, a tenth of them failures,
written once into a cached copy of its database. billportal serves it as in production;
an admin session and an API key are made through billportal's own Store (no password
check is measured), and each list is asked for one page at a time, one request after
another, for a fixed count per list: the first page, a deep page (its cursor from a
page before), and each filter. The CSV export streams the whole log: it is measured by
its first byte and by its rows per second.

Later dashboard lists get a line in ``LISTS`` and are measured the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from bench import pgredis
from bench.common import COMPANY, DATABASE_FILE, VAR, quick_mode, schema_fingerprint
from bench.servers import Server, copy_dataset
from billportal.core.config import Settings, load_or_create_master_key
from billportal.services import api_keys
from billportal.services.audit import Actor
from billportal.storage import open_store
from billportal.storage.records import AdminSession
from billportal.web.sessions import hash_session_id

TARGET_P99_MS: Final = 50.0
DASHBOARD_HOST: Final = "dashboard.localhost"
ADMIN_COOKIE: Final = "__Host-bp_admin"
SSO_LOG: Final = "/settings/developers/sso/log"
BATCH: Final = 100_000
DAYS: Final = 90
REASONS: Final = ("expired", "bad_signature", "jti_replayed", "customer_unknown", "issuer_not_allowed")

# (name, host, path): "{deep}" is the log's cursor some pages down, "{customer}" a customer with events.
LISTS: Final = (
    ("Sign-in log, first page", "dashboard", SSO_LOG),
    ("Sign-in log, a deep page", "dashboard", SSO_LOG + "?before={deep}"),
    ("Sign-in log, failures only", "dashboard", SSO_LOG + "?result=failure"),
    ("Sign-in log, one reason", "dashboard", SSO_LOG + "?reason=jti_replayed"),
    ("Sign-in log, one customer", "dashboard", SSO_LOG + "?customer={customer}"),
    ("API sign-in events, first page", "api", "/api/v1/sign_in_events?limit=100"),
    ("API sign-in events, failures", "api", "/api/v1/sign_in_events?limit=100&result=failure"),
    ("API sign-in events, one customer", "api", "/api/v1/sign_in_events?limit=100&customer_id={customer}"),
    ("Customers, first page", "dashboard", "/customers"),
    ("Customers, a deep page", "dashboard", "/customers?after={customer}"),
    ("Customers, search by name", "dashboard", "/customers?q=Bench+Customer+{customer}"),
    ("Customers, search by part of a number", "dashboard", "/customers?q=CUST-05000"),
    ("Customers, search by part of an email", "dashboard", "/customers?q=customer{customer}%40"),
    ("Customers, search that every customer matches", "dashboard", "/customers?q=bench"),
    ("Customers, search that no customer matches", "dashboard", "/customers?q=nobody+here"),
    ("Customers, search of two characters", "dashboard", "/customers?q=99"),
    ("Customers, owing a balance", "dashboard", "/customers?owing=balance"),
    ("Customers, past due", "dashboard", "/customers?owing=past_due"),
    ("Customers, past due, a deep page", "dashboard", "/customers?owing=past_due&after={customer}"),
    ("Customers, search and past due", "dashboard", "/customers?q=CUST-05&owing=past_due"),
    ("Payments, first page", "dashboard", "/payments"),
)


def event_count() -> int:
    return 1_000_000 if quick_mode() else 10_000_000


def requests_per_list() -> int:
    return 40 if quick_mode() else 200


@dataclass(frozen=True)
class Access:
    admin_cookie: str
    api_key: str


def with_events(source: Path, customers: int) -> tuple[Path, float | None]:
    """A cached copy of ``source`` with the big sign-in log; and the build time (None: cached)."""
    count = event_count()
    target = VAR / "data" / f"{source.name}-events{count}"
    marker = target / "events.done"
    if marker.exists():
        return target, None
    started = time.monotonic()
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    _write_events(target / DATABASE_FILE, count, customers)
    marker.write_text(str(count), encoding="ascii")
    return target, time.monotonic() - started


def _write_events(database: Path, count: int, customers: int) -> None:
    pick = random.Random(count)
    now = int(time.time())
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as conn:
        (company_id,) = conn.execute("SELECT id FROM companies WHERE username = ?", (COMPANY,)).fetchone()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # a build step: the dataset is thrown away if it is cut short
        # Oldest first, so that ids rise with time as they do when the log is written live.
        start = now - DAYS * 86_400
        step = DAYS * 86_400 / count
        for first in range(0, count, BATCH):
            rows = []
            for n in range(first, min(count, first + BATCH)):
                failed = pick.random() < 0.1
                rows.append(
                    (
                        company_id,
                        int(start + n * step),
                        "failure" if failed else "success",
                        pick.choice(REASONS) if failed else "ok",
                        pick.randint(1, customers),
                        "bench-backend",
                        "k1",
                        f"bench-{n:x}",
                        f"203.0.113.{n % 250}",
                        "Mozilla/5.0 (bench)",
                    )
                )
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO sign_in_events (company_id, at, result, reason, customer_id, issuer, kid, jti, ip,"
                " user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def _access(settings: Settings) -> Access:
    """An admin session of the bench company and an API key that reads the log, made through billportal's Store."""
    store = open_store(settings, migrate=False)
    try:
        company = await store.company(COMPANY)
        if company is None:
            raise RuntimeError(f"no company {COMPANY!r} in the dataset")
        now = int(time.time())
        email = f"bench-{secrets.token_hex(4)}@example.com"
        admin_id = await store.admins.create_admin(
            email, "not-a-password-hash", company_id=company.id, must_change_password=False, now=now
        )
        session_id = secrets.token_urlsafe(32)
        await store.admins.create_session(
            AdminSession(
                hash_session_id(session_id), admin_id, company.id, secrets.token_urlsafe(16), now, now, now + 3600
            )
        )
        actor = Actor(email, admin_id, "127.0.0.1", "bench")
        key = await api_keys.create(
            store, company, "bench lists", actor, now, scopes=("documents:read", "sign_in_events:read")
        )
        return Access(session_id, key.key)
    finally:
        close = getattr(store.backend, "aclose", None)
        if close is not None:
            await close()
        else:
            store.close()


def _timings(client: httpx.Client, path: str, headers: dict[str, str], count: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        latencies.append(time.perf_counter() - started)
        statuses[str(answer.status_code)] = statuses.get(str(answer.status_code), 0) + 1
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 2)

    return {"requests": count, "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100), "statuses": statuses}


def _deep_cursor(client: httpx.Client, headers: dict[str, str], pages: int) -> str:
    """The ``before`` cursor ``pages`` pages into the log, followed page by page as an admin would."""
    cursor = ""
    for _ in range(pages):
        answer = client.get(SSO_LOG + (f"?before={cursor}" if cursor else ""), headers=headers)
        found = re.search(r"before=(\d+)", answer.text)
        if found is None:
            break
        cursor = found.group(1)
    return cursor or "1"


def _csv(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    first_byte = None
    rows = 0
    deadline = started + (20 if quick_mode() else 120)
    with client.stream("GET", SSO_LOG.removesuffix("/log") + "/log.csv", headers=headers) as answer:
        for chunk in answer.iter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            rows += chunk.count(b"\n")
            if time.perf_counter() > deadline:
                break
    elapsed = time.perf_counter() - started
    return {
        "status": answer.status_code,
        "first_byte_ms": round(1000 * (first_byte or elapsed), 1),
        "rows": rows,
        "rows_per_second": round(rows / elapsed) if elapsed else 0,
        "complete": time.perf_counter() <= deadline,
    }


def measure(large_dir: Path, customers: int, *, access_log: bool) -> dict[str, Any]:
    """Build (or reuse) the big log, serve it from SQLite, and time each list."""
    source, built = with_events(large_dir, customers)
    data = copy_dataset(source, "lists")
    out: dict[str, Any] = {"events": event_count(), "customers": customers, "build_seconds": built}
    try:
        settings = Settings(data_dir=data, master_key=load_or_create_master_key(data))
        access = asyncio.run(_access(settings))
        with Server("billportal", data, access_log=access_log) as server:
            out |= _measure_lists(server, access, customers)
        return out
    finally:
        shutil.rmtree(data, ignore_errors=True)


def measure_postgresql(large_dir: Path, customers: int, *, access_log: bool) -> dict[str, Any]:
    """The same lists on PostgreSQL + Redis: the same rows, copied into a private cluster kept under var/bench."""
    if pgredis.private_servers_available():
        return {"status": f"not measured: {pgredis.private_servers_available()} not installed on this machine"}
    source, built = with_events(large_dir, customers)
    meta = json.dumps({"source": source.name, "events": event_count(), "schema": schema_fingerprint()})
    cluster_dir = VAR / "pg-lists"
    marker = cluster_dir / "billportal-dataset.json"
    master_key = load_or_create_master_key(source)
    out: dict[str, Any] = {"events": event_count(), "customers": customers, "build_seconds": built}
    if marker.exists() and marker.read_text(encoding="utf-8") != meta:
        shutil.rmtree(cluster_dir, ignore_errors=True)  # another dataset or schema: built again
    cluster = pgredis.start_kept(cluster_dir)
    redis = pgredis.PrivateRedis()
    data = VAR / "run" / "lists-pg"
    try:
        if not marker.exists():
            started = time.monotonic()
            out["copied"] = pgredis.copy_from_sqlite(cluster.url, source / DATABASE_FILE, master_key)
            out["load_seconds"] = round(time.monotonic() - started, 1)
            marker.write_text(meta, encoding="utf-8")
        redis.start()
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        settings = Settings(data_dir=data, master_key=master_key, database_url=cluster.url, redis_url=redis.url)
        access = asyncio.run(_access(settings))
        env = {
            "BILLPORTAL_DATABASE_URL": cluster.url,
            "BILLPORTAL_REDIS_URL": redis.url,
            "BILLPORTAL_MASTER_KEY": base64.urlsafe_b64encode(master_key).decode("ascii"),
        }
        with Server("billportal", data, access_log=access_log, extra_env=env) as server:
            out |= _measure_lists(server, access, customers)
        out["status"] = "measured"
        return out
    finally:
        redis.stop()
        pgredis.stop_kept(cluster)
        shutil.rmtree(data, ignore_errors=True)


def _measure_lists(server: Server, access: Access, customers: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{server.port}"
    dashboard = {"Host": DASHBOARD_HOST, "Cookie": f"{ADMIN_COOKIE}={access.admin_cookie}"}
    api = {"Host": DASHBOARD_HOST, "Authorization": f"Bearer {access.api_key}"}
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        values = {"deep": _deep_cursor(client, dashboard, 50), "customer": str(customers // 2)}
        found = {}
        for name, host, template in LISTS:
            path = template.format(**values)
            headers = dashboard if host == "dashboard" else api
            client.get(path, headers=headers)  # warm: the first answer fills caches, as in production
            found[name] = {"path": path} | _timings(client, path, headers, requests_per_list())
        out["lists"] = found
        out["csv"] = _csv(client, dashboard)
    out["ok"] = all(row["p99_ms"] < TARGET_P99_MS and set(row["statuses"]) == {"200"} for row in found.values())
    return out
