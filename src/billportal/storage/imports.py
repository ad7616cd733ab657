"""Queries of CSV imports: invoices by their numbers, and the uploads kept between preview and confirmation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, or_, select

from billportal.storage import documents
from billportal.storage import schema as t
from billportal.storage.bounds import check_row
from billportal.storage.records import Invoice


@dataclass(frozen=True, slots=True)
class Upload:
    """A CSV file uploaded to the dashboard, waiting for the admin to confirm its import."""

    kind: str
    filename: str
    data: bytes
    expires_at: int


def invoices_numbered(conn: Connection, company_id: int, numbers: Sequence[str]) -> dict[str, Invoice]:
    """The company's invoices whose numbers are among ``numbers``, complete with their lines, by number."""
    c = t.invoices.c
    found: dict[str, Invoice] = {}
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        rows = conn.execute(select(t.invoices).where(c.company_id == company_id, c.number.in_(chunk))).all()
        found.update((invoice.number, invoice) for invoice in documents.complete(conn, "invoice", rows))
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
    """Keep an upload, in place of the session's earlier one; the expired ones of every session go too."""
    c = t.import_uploads.c
    conn.execute(delete(t.import_uploads).where(or_(c.expires_at <= now, c.session_hash == session_hash)))
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
