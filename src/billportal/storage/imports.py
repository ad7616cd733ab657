"""Queries of CSV imports: an invoice by its number, and the uploads kept between preview and confirmation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, delete, select

from billportal.storage import documents
from billportal.storage import schema as t
from billportal.storage.bounds import check_row, fits
from billportal.storage.records import Customer

_CHUNK: Final = 500  # ids in one IN list


@dataclass(frozen=True, slots=True)
class Upload:
    """A CSV file uploaded to the dashboard, waiting for the admin to confirm its import."""

    kind: str
    filename: str
    data: bytes
    expires_at: int


def customers(conn: Connection, company_id: int, ids: Sequence[int]) -> dict[int, Customer]:
    """The company's customers among ``ids`` (ids that cannot be stored are none)."""
    c = t.customers.c
    wanted = [customer_id for customer_id in ids if fits(c.id, customer_id)]
    found: dict[int, Customer] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            select(t.customers).where(c.company_id == company_id, c.id.in_(wanted[start : start + _CHUNK]))
        ).all()
        found.update((customer.id, customer) for customer in documents.complete(conn, "customer", rows))
    return found


def invoice_id(conn: Connection, company_id: int, number: str) -> int | None:
    c = t.invoices.c
    found: int | None = conn.execute(select(c.id).where(c.company_id == company_id, c.number == number)).scalar()
    return found


def keep_upload(
    conn: Connection,
    *,
    id_hash: bytes,
    session_hash: bytes,
    company_id: int,
    kind: str,
    filename: str,
    data: bytes,
    now: int,
    expires_at: int,
) -> None:
    """Keep an upload; the expired ones of every session go at the same time."""
    conn.execute(delete(t.import_uploads).where(t.import_uploads.c.expires_at <= now))
    row = {
        "id_hash": id_hash,
        "session_hash": session_hash,
        "company_id": company_id,
        "kind": kind,
        "filename": filename,
        "data": data,
        "created_at": now,
        "expires_at": expires_at,
    }
    check_row(t.import_uploads, row)
    conn.execute(t.import_uploads.insert().values(**row))


def upload(conn: Connection, *, id_hash: bytes, session_hash: bytes, company_id: int, now: int) -> Upload | None:
    """The session's upload for the company, unless it expired (or is someone else's: alike)."""
    c = t.import_uploads.c
    row = conn.execute(
        select(c.kind, c.filename, c.data, c.expires_at).where(
            c.id_hash == id_hash, c.session_hash == session_hash, c.company_id == company_id, c.expires_at > now
        )
    ).first()
    return None if row is None else Upload(row.kind, row.filename, bytes(row.data), row.expires_at)


def drop_upload(conn: Connection, *, id_hash: bytes, session_hash: bytes) -> bool:
    """Forget an upload (once imported); whether it was there, so that only one confirmation imports it."""
    c = t.import_uploads.c
    return (
        conn.execute(delete(t.import_uploads).where(c.id_hash == id_hash, c.session_hash == session_hash)).rowcount > 0
    )
