"""CSV imports at scale: ``billportal import`` of 100,000 customers, of 100,000 invoices (two lines each), then of
100,000 contacts (one a customer).

Each import runs as the command an operator types, in a process of its own, on a
fresh embedded (SQLite) database; the time is the whole command's, start-up
included. Then the same files again, which must change nothing (idempotence).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, VAR, quick_mode
from bench.servers import server_env

CUSTOMERS = 100_000
INVOICES = 100_000  # two lines each: 200,000 rows
CONTACTS = 100_000  # one a customer
TIMEOUT = 600.0


def write_files(folder: Path, customers: int, invoices: int, contacts: int = 0) -> tuple[Path, Path, Path]:
    """A customers, an invoices (each of customer ``i % customers``, two lines) and a contacts file."""
    people = folder / "customers.csv"
    with people.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "name", "email", "country", "state", "currency"])
        for i in range(1, customers + 1):
            out.writerow([i, f"Customer {i}", f"billing{i}@example.com", "US", "CA", "USD"])
    bills = folder / "invoices.csv"
    with bills.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["number", "customer_id", "issued_on", "due_on", "description", "quantity", "unit_price", "tax"])
        for i in range(1, invoices + 1):
            number, customer = f"IMP-{i:07d}", (i % customers) + 1
            out.writerow([number, customer, "2026-11-01", "2026-12-01", "Subscription", "1", 4900, 392])
            out.writerow([number, "", "", "", "Extra seats", "3", 1000, 0])
    contacts_file = folder / "contacts.csv"
    with contacts_file.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["customer_id", "email", "name", "role"])
        for i in range(1, contacts + 1):
            customer = (i - 1) % customers + 1
            out.writerow([customer, f"person{i}@c{customer}.example", f"Person {i}", ("view", "pay", "manage")[i % 3]])
    return people, bills, contacts_file


def _command(env: dict[str, str], *args: str) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    done = subprocess.run(
        [PYTHON, "-m", "billportal", *args], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"billportal {args[0]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    out = done.stdout.strip()
    return seconds, json.loads(out) if out.startswith("{") else {}


def measure() -> dict[str, Any]:
    customers, invoices, contacts = (10_000, 10_000, 10_000) if quick_mode() else (CUSTOMERS, INVOICES, CONTACTS)
    folder = VAR / "run" / "imports"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    env = server_env(folder / "data", access_log=False)
    people, bills, contacts_file = write_files(folder, customers, invoices, contacts)
    _command(env, "db", "upgrade")
    _command(env, "tenant", "create", "acme", "--name", "Acme")
    results: dict[str, Any] = {}
    files = (("customers", people, customers), ("invoices", bills, 2 * invoices), ("contacts", contacts_file, contacts))
    for kind, path, rows in files:
        seconds, first = _command(env, "import", kind, str(path), "--tenant", "acme")
        again, second = _command(env, "import", kind, str(path), "--tenant", "acme")
        results[kind] = {
            "rows": rows,
            "units": first.get("created", 0),
            "seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds),
            "again_seconds": round(again, 2),
            "again_unchanged": second.get("unchanged", 0),
        }
    shutil.rmtree(folder, ignore_errors=True)
    return results


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
