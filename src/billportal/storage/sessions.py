"""A customer's own sessions, as their Security page lists and ends them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, select, update

from billportal.storage import schema as t


def of_customer(conn: Connection, company_id: int, customer_id: int, contact_id: int | None = None) -> list[Any]:
    """The customer's session rows (hash, device, created, last seen, expires), most recently seen first.

    Only the person's own: the customer's (``contact_id`` None) or that contact's.
    """
    s = t.sessions.c
    query = (
        select(s.id_hash, s.device, s.created_at, s.last_seen_at, s.expires_at)
        .where(s.company_id == company_id, s.customer_id == customer_id, _person(contact_id))
        .order_by(s.last_seen_at.desc())
        .limit(200)
    )
    return list(conn.execute(query).all())


def end(
    conn: Connection, company_id: int, customer_id: int, id_hashes: list[bytes], contact_id: int | None = None
) -> int:
    """End those of ``id_hashes`` that are this person's sessions; return how many ended."""
    if not id_hashes:
        return 0
    s = t.sessions.c
    where = (s.company_id == company_id, s.customer_id == customer_id, _person(contact_id), s.id_hash.in_(id_hashes))
    ended = conn.execute(delete(t.sessions).where(*where))
    return int(ended.rowcount)


def _person(contact_id: int | None) -> ColumnElement[bool]:
    s = t.sessions.c
    return s.contact_id.is_(None) if contact_id is None else s.contact_id == contact_id


def touch(conn: Connection, id_hash: bytes, now: int, device: str) -> None:
    """The session's last use, and the device it is used from."""
    s = t.sessions.c
    conn.execute(update(t.sessions).where(s.id_hash == id_hash).values(last_seen_at=now, device=device))
