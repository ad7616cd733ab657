"""The scale-out configuration under test: PostgreSQL + Redis, on this machine only.

By default the harness starts its own PostgreSQL cluster (initdb under
var/bench/pg, as the ``postgres`` user, fsync on as in production) and its own
Redis (no persistence: it only caches sessions) on free loopback ports, seeds
them with the 1,000-customer dataset through billportal's Store, and stops them
afterwards. ``BILLPORTAL_DATABASE_URL`` and ``BILLPORTAL_REDIS_URL`` in the
environment of ``make bench`` name existing loopback servers instead (an empty
database reserved for the benchmark: the company is created if missing).

When the build cannot open a PostgreSQL URL, the report says "not built yet".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert

from bench.common import COMPANY, free_port
from bench.generate import (
    CUSTOMER_COLUMNS,
    INVOICE_COLUMNS,
    Dataset,
    customer_rows,
    invoice_rows,
    invoices_per_customer,
    setup_company,
)
from billportal.core.config import ConfigError, Settings, load_or_create_master_key
from billportal.storage import open_store, schema
from billportal.storage.store import Store

_PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
PG_BIN = Path(_PG_BINS[-1]) if _PG_BINS else None
REDIS_SERVER = shutil.which("redis-server")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "")


def supported() -> bool:
    """Whether this build of billportal opens a PostgreSQL URL (it need not connect to say so)."""
    settings = Settings(database_url="postgresql+psycopg://bench@127.0.0.1:1/none", master_key=b"\0" * 32)
    try:
        store = open_store(settings, migrate=False)
    except ConfigError:
        return False
    except Exception:  # noqa: BLE001 - anything past the URL check means the backend exists
        return True
    store.close()
    return True


def loopback_only(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK


def _as_postgres(*command: str) -> list[str]:
    """PostgreSQL's tools refuse to run as root: run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@dataclass
class PrivatePostgres:
    data: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        assert PG_BIN is not None
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
        self.port = free_port()
        subprocess.run(
            _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.launch()

    def launch(self) -> None:
        """``pg_ctl start`` on this cluster's files and port, waiting until it answers."""
        assert PG_BIN is not None
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-w",
                "-t",
                "120",
                "-l",
                str(self.data / "log"),
                "-o",
                f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=50",
                "start",
            ),
            check=True,
            capture_output=True,
            timeout=180,
        )

    def stop(self) -> None:
        if PG_BIN is None or not (self.data / "postmaster.pid").exists():
            return
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"),
            check=False,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(self.data, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.port = free_port()
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None


def private_servers_available() -> str:
    """Empty when this machine can run a private PostgreSQL and Redis; else what is missing."""
    missing = [name for name, found in (("PostgreSQL", PG_BIN), ("redis-server", REDIS_SERVER)) if not found]
    return " and ".join(missing)


async def _seed(store: Store, dataset: Dataset) -> str:
    """Create the bench company and its customers and invoices if missing; return the SSO key."""
    now = int(time.time())
    company = await store.company(COMPANY)
    if company is None:
        company_id = await setup_company(store, now)
        counts = invoices_per_customer(dataset)
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        customers = [
            dict(zip(CUSTOMER_COLUMNS, row, strict=True)) for row in customer_rows(company_id, dataset.customers, now)
        ]
        invoices = [
            dict(zip(INVOICE_COLUMNS, row, strict=True)) for row in invoice_rows(company_id, counts, today, now)
        ]

        def change(conn: Connection) -> None:
            conn.execute(insert(schema.customers), customers)
            conn.execute(insert(schema.invoices), invoices)

        await store.backend.write(change)
        store.forget_company(COMPANY)
        company = await store.company(COMPANY)
    assert company is not None
    return next(k.secret.decode("utf-8") for k in company.sso_keys if k.state == "active")


def seed(database_url: str, redis_url: str, data_dir: Path, dataset: Dataset) -> str:
    """Migrate and seed the PostgreSQL database; returns the bench company's SSO key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data_dir=data_dir,
        master_key=load_or_create_master_key(data_dir),
        database_url=database_url,
        redis_url=redis_url,
    )

    async def go() -> str:
        store = open_store(settings)
        try:
            return await _seed(store, dataset)
        finally:
            close = getattr(store.backend, "aclose", None)
            if close is not None:
                await close()
            else:
                store.close()

    return asyncio.run(go())


def start_kept(data: Path) -> PrivatePostgres:
    """A private cluster whose files are kept between runs (a cached dataset): made on first use, else started."""
    assert PG_BIN is not None
    if not (data / "PG_VERSION").exists():
        server = PrivatePostgres(data)
        server.start()
        return server
    server = PrivatePostgres(data, free_port())
    (data / "postmaster.pid").unlink(missing_ok=True)  # a run cut short leaves it; the cluster is ours alone
    server.launch()
    return server


def stop_kept(server: PrivatePostgres) -> None:
    """Stop a kept cluster, leaving its files."""
    assert PG_BIN is not None
    subprocess.run(
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(server.data), "-m", "fast", "-w", "stop"),
        check=False,
        capture_output=True,
        timeout=120,
    )


def copy_from_sqlite(database_url: str, sqlite_path: Path, master_key: bytes) -> dict[str, int]:
    """Migrate the PostgreSQL database, then copy every table of a SQLite dataset into it (COPY, indexes after).

    The rows are billportal's own, written by its SQLite build: the same customers, documents and
    log on either database. Returns the rows copied per table.
    """
    import contextlib
    import sqlite3

    import psycopg

    open_store(Settings(database_url=database_url, master_key=master_key)).close()  # the schema, by migrations
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    copied: dict[str, int] = {}
    with (
        contextlib.closing(sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)) as source,
        psycopg.connect(url, autocommit=True) as target,
    ):
        for table in schema.metadata.sorted_tables:
            columns = [c.name for c in table.columns]
            indexes = [
                (name, definition)
                for name, definition in target.execute(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes AS i WHERE i.tablename = %s AND NOT EXISTS"
                    " (SELECT 1 FROM pg_constraint AS c WHERE c.conname = i.indexname)",
                    (table.name,),
                )
            ]
            for name, _ in indexes:
                target.execute(f'DROP INDEX "{name}"')
            target.execute(f"TRUNCATE {table.name} CASCADE")
            names = ", ".join(columns)
            rows = source.execute(f"SELECT {names} FROM {table.name}")
            count = 0
            with target.cursor().copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            copied[table.name] = count
            for _, definition in indexes:
                target.execute(definition)
            serial = None
            if "id" in columns:
                serial = target.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table.name,)).fetchone()
            if serial and serial[0]:
                target.execute(f"SELECT setval('{serial[0]}', COALESCE((SELECT max(id) FROM {table.name}), 0) + 1)")
        target.execute("VACUUM ANALYZE")
    return copied
