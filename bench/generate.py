"""Build the benchmark databases: one company, N customers, M invoices, in minutes.

``python -m bench.generate --customers 1000000 --invoices 5000000`` (``make bench``
calls :func:`ensure`). The schema comes from billportal itself (``open_store``
runs the migrations, the company and its sealed SSO key are made by the Store);
the customers and invoices are then bulk-inserted with ``sqlite3.executemany``
in big transactions, in primary-key order so every index grows at its end.

A built database is cached under ``var/bench/data/{name}/`` beside a ``meta.json``
naming the generator version, the sizes and a hash of the schema; a rerun with the
same three reuses it, anything else rebuilds it. Benchmarks run on a copy, so the
cached file never collects the sessions and events of earlier runs.

The data: customers 1..16 are "heavy" (60 invoices each, so the invoice list shows
a full page of 25); the other invoices are spread evenly over the other customers.
Only the heavy customers' invoices have line items (the list pages never read them).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import COMPANY, ISSUER, TOKEN_TTL, VAR, schema_fingerprint
from billportal.core.config import Settings, load_or_create_master_key
from billportal.services import sso
from billportal.services.audit import CLI
from billportal.sso import keys as sso_keys
from billportal.storage import open_store
from billportal.storage.store import Store

GENERATOR_VERSION = 2  # 2: every amount paid has its payment on record, as the billing core writes it
HEAVY_CUSTOMERS = 16
HEAVY_INVOICES = 60
BATCH = 100_000
_STATUSES = ("paid", "paid", "open", "paid", "open", "voided", "paid", "open", "paid", "draft")


@dataclass(frozen=True)
class Dataset:
    """One cached benchmark database."""

    name: str
    customers: int
    invoices: int

    @property
    def data_dir(self) -> Path:
        return VAR / "data" / self.name

    @property
    def label(self) -> str:
        return f"{self.customers:,} customers, {self.invoices:,} invoices"

    def meta(self) -> dict[str, Any]:
        return {
            "generator": GENERATOR_VERSION,
            "customers": self.customers,
            "invoices": self.invoices,
            "heavy_customers": HEAVY_CUSTOMERS,
            "heavy_invoices": HEAVY_INVOICES,
            "schema": schema_fingerprint(),
        }


def cached(dataset: Dataset) -> bool:
    meta_path = dataset.data_dir / "meta.json"
    if not meta_path.exists() or not (dataset.data_dir / "billportal.sqlite3").exists():
        return False
    stored = json.loads(meta_path.read_text(encoding="utf-8"))
    return all(stored.get(name) == value for name, value in dataset.meta().items())


def ensure(dataset: Dataset) -> tuple[Path, float | None]:
    """The data folder of ``dataset``, built if missing; and the build time (None: cached)."""
    if cached(dataset):
        return dataset.data_dir, None
    return dataset.data_dir, build(dataset)


async def setup_company(store: Store, now: int) -> int:
    """The bench company with every policy rule switched on (jti required, issuer list, cutoff...)."""
    company_id, _ = await sso.create_company(
        store, COMPANY, "Acme Corporation", sso_keys.generate_sso_key(), weak=False, now=now
    )
    company = await store.company(COMPANY)
    assert company is not None
    policy = sso.PolicySettings.of(company)
    strict = dataclasses.replace(
        policy, require_jti=True, max_lifetime=TOKEN_TTL, allowed_issuers=(ISSUER, "another-backend"), leeway=60
    )
    await sso.update_policy(store, company, strict, CLI, now)
    await sso.cut_off_links(store, company, CLI, now - 86_400)
    return company_id


def customer_rows(company_id: int, count: int, now: int) -> Iterator[tuple[Any, ...]]:
    for cid in range(1, count + 1):
        yield (
            company_id,
            cid,
            f"CUST-{cid:07d}",
            f"Bench Customer {cid}",
            f"customer{cid}@example.test",
            "+1 555 0100",
            f"{cid} Main Street",
            "Springfield",
            "IL",
            "62701",
            "US",
            "USD",
            now,
            now,
        )


def invoices_per_customer(dataset: Dataset) -> list[int]:
    """How many invoices each customer gets (index 0 is customer 1)."""
    heavy = min(HEAVY_CUSTOMERS, dataset.customers)
    rest = max(0, dataset.invoices - heavy * HEAVY_INVOICES)
    others = dataset.customers - heavy
    base, extra = divmod(rest, others) if others else (0, 0)
    return [HEAVY_INVOICES] * heavy + [base + (1 if i < extra else 0) for i in range(others)]


def invoice_rows(company_id: int, counts: list[int], today: dt.date, now: int) -> Iterator[tuple[Any, ...]]:
    days = [(today - dt.timedelta(days=d)).isoformat() for d in range(2000)]
    number = 0
    for index, count in enumerate(counts):
        cid = index + 1
        for k in range(count):
            number += 1
            # Oldest first: the customer's index on issued_on grows at its end.
            age = (count - k) * 30 + (cid % 7)
            issued = days[min(age, len(days) - 31)]
            due = days[max(min(age, len(days) - 31) - 30, 0)]
            status = _STATUSES[(number + cid) % len(_STATUSES)]
            if k >= count - 3 and status in ("paid", "draft"):
                status = "open"  # every customer has a few recent open invoices
            subtotal = 1000 + (number * 7919) % 90_000
            tax = subtotal // 10
            total = subtotal + tax
            paid = total if status == "paid" else (total // 3 if k % 4 == 0 and status == "open" else 0)
            balance = 0 if status in ("paid", "voided") else total - paid
            yield (
                company_id,
                cid,
                f"INV-{number:08d}",
                "USD",
                status,
                issued,
                due,
                subtotal,
                0,
                tax,
                total,
                paid,
                balance,
                "",
                now,
                now,
            )


CUSTOMER_COLUMNS = (
    "company_id", "id", "number", "name", "email", "phone", "address_line1", "city", "state",
    "postal_code", "country", "currency", "created_at", "updated_at",
)  # fmt: skip
INVOICE_COLUMNS = (
    "company_id", "customer_id", "number", "currency", "status", "issued_on", "due_on", "subtotal",
    "discount", "tax", "total", "amount_paid", "balance", "notes", "created_at", "updated_at",
)  # fmt: skip


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


_INSERT_CUSTOMER = _insert_sql("customers", CUSTOMER_COLUMNS)
_INSERT_INVOICE = _insert_sql("invoices", INVOICE_COLUMNS)
# What was paid on an invoice was paid by a payment on record: one per such invoice, as the billing core writes it.
_INSERT_PAYMENTS = (
    "INSERT INTO payments (company_id, customer_id, number, currency, received_on, method, reference, amount,"
    " created_at, updated_at) SELECT company_id, customer_id, 'PAY-' || substr(number, 5), currency, issued_on,"
    " 'card', '', amount_paid, created_at, updated_at FROM invoices WHERE company_id = ? AND amount_paid > 0"
    " ORDER BY id"
)
_INSERT_APPLICATIONS = (
    "INSERT INTO payment_applications (payment_id, invoice_id, amount) SELECT p.id, i.id, i.amount_paid"
    " FROM invoices AS i JOIN payments AS p ON p.company_id = i.company_id AND p.number = 'PAY-' || substr(i.number, 5)"
    " WHERE i.company_id = ? AND i.amount_paid > 0"
)
_INSERT_LINE = (
    "INSERT INTO line_items (document_kind, document_id, position, description, quantity, unit_price,"
    " discount, tax, amount) SELECT 'invoice', id, 1, 'Bench subscription', '1', subtotal, 0, tax, total"
    " FROM invoices WHERE company_id = ? AND customer_id <= ?"
)


def _insert_batches(conn: sqlite3.Connection, sql: str, rows: Iterator[tuple[Any, ...]]) -> int:
    total = 0
    while True:
        batch = [row for _, row in zip(range(BATCH), rows, strict=False)]
        if not batch:
            return total
        conn.execute("BEGIN")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
        total += len(batch)


def build(dataset: Dataset, *, progress: bool = True) -> float:
    """Build ``dataset`` from nothing; returns the seconds it took."""
    started = time.monotonic()
    target = dataset.data_dir
    work = target.with_name(target.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    settings = Settings(data_dir=work, master_key=load_or_create_master_key(work))
    now = int(time.time())
    store = open_store(settings)
    try:
        company_id = asyncio.run(setup_company(store, now))
    finally:
        store.close()

    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-262144", "temp_store=MEMORY"):
            conn.execute(f"PRAGMA {pragma}")
        customers = _insert_batches(conn, _INSERT_CUSTOMER, customer_rows(company_id, dataset.customers, now))
        if progress:
            print(f"  {dataset.name}: {customers:,} customers in {time.monotonic() - started:.0f} s", flush=True)
        counts = invoices_per_customer(dataset)
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        invoices = _insert_batches(conn, _INSERT_INVOICE, invoice_rows(company_id, counts, today, now))
        conn.execute("BEGIN")
        conn.execute(_INSERT_LINE, (company_id, HEAVY_CUSTOMERS))
        conn.execute(_INSERT_PAYMENTS, (company_id,))
        conn.execute(_INSERT_APPLICATIONS, (company_id,))
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    if invoices != dataset.invoices or customers != dataset.customers:
        raise RuntimeError(f"built {customers} customers and {invoices} invoices, not {dataset.label}")
    seconds = time.monotonic() - started
    meta = dataset.meta() | {"built_at": now, "build_seconds": round(seconds, 1)}
    (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    if progress:
        print(f"  {dataset.name}: {dataset.label} built in {seconds:.0f} s", flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="", help="cache folder name (default from the sizes)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=5_000_000)
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    args = parser.parse_args(argv)
    dataset = Dataset(args.name or f"c{args.customers}-i{args.invoices}", args.customers, args.invoices)
    if cached(dataset) and not args.force:
        print(f"{dataset.data_dir}: cached ({dataset.label})")
        return 0
    build(dataset)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
