"""Paths, modes and small helpers that every part of the harness shares."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import billportal

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
DOCS = ROOT / "docs"
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable

COMPANY = "acme"
ISSUER = "bench-backend"
TOKEN_TTL = 3600
HOST_HEADER = f"{COMPANY}.localhost"
COOKIE_NAME = "__Host-bp_session"
DATABASE_FILE = "billportal.sqlite3"

# The portal pages measured against the reference; "{invoice}" is the signed-in customer's newest invoice.
PORTAL_PAGES: Final = {
    "my_account": "/",
    "invoices": "/invoices",
    "invoice": "/invoices/{invoice}",
    "payments": "/payments",
    "statement": "/statements/balance-forward",
    "invoice_pdf": "/invoices/{invoice}/pdf",
    "statement_pdf": "/statements/balance-forward/pdf",
}


def page_paths(data_dir: Path, customers: Iterable[int]) -> dict[int, dict[str, str]]:
    """Each customer's path of each measured page, read from that folder's database."""
    uri = f"file:{data_dir / DATABASE_FILE}?mode=ro"
    paths: dict[int, dict[str, str]] = {}
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        for customer in customers:
            row = conn.execute(
                "SELECT id FROM invoices WHERE customer_id = ? AND status != 'draft'"
                " ORDER BY issued_on DESC, id DESC LIMIT 1",
                (customer,),
            ).fetchone()
            ids = {"invoice": row[0] if row else 0}
            paths[customer] = {page: path.format(**ids) for page, path in PORTAL_PAGES.items()}
    return paths


def quick_mode() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Durations:
    """Seconds for each kind of run; BENCH_QUICK=1 shortens all of them."""

    warmup: float
    rounds: int  # wrk runs per server, interleaved across the servers under test
    max_throughput: float  # seconds of each wrk round
    fixed_rate: float
    portal: float
    soak: float
    overload: float
    crash: float
    profile: float
    large_customers: int
    large_invoices: int


FULL = Durations(
    warmup=3,
    rounds=5,
    max_throughput=5,
    fixed_rate=15,
    portal=4,
    soak=60,
    overload=15,
    crash=20,
    profile=10,
    large_customers=1_000_000,
    large_invoices=5_000_000,
)
QUICK = Durations(
    warmup=1,
    rounds=2,
    max_throughput=2,
    fixed_rate=3,
    portal=1,
    soak=6,
    overload=4,
    crash=4,
    profile=3,
    large_customers=100_000,
    large_invoices=500_000,
)


def durations() -> Durations:
    return QUICK if quick_mode() else FULL


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (never 8000: the kernel picks from the ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def schema_fingerprint() -> str:
    """A hash of the schema and its migrations: a cached database is rebuilt when they change."""
    package = Path(billportal.__file__).resolve().parent / "storage"
    digest = hashlib.sha256()
    files = [package / "schema.py", *sorted((package / "migrations" / "versions").glob("*.py"))]
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def write_secret(path: Path, lines: list[str]) -> None:
    """Write tokens or cookies for a load tool: owner-only, never printed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("\n".join(lines))
        handle.write("\n")


def paired_ratio(ours: Any, ref: Any) -> tuple[float, float, float] | None:
    """Median, lowest and highest of the per-round ratios ours / reference (their rounds alternate)."""
    if not isinstance(ours, dict) or not isinstance(ref, dict):
        return None
    pairs = [(a, b) for a, b in zip(ours.get("rounds", []), ref.get("rounds", []), strict=False) if a and b]
    if not pairs:
        return None
    ratios = sorted(a / b for a, b in pairs)
    return ratios[len(ratios) // 2], ratios[0], ratios[-1]
