"""Queries for idempotency keys: a POST's key is reserved in the very transaction that does its work.

:func:`reserve` inserts the key's row before the work. A concurrent request
with the same key inserts the same primary key: on PostgreSQL it waits for the
first transaction to end, and then finds the row (the work committed) or takes
the key itself (it rolled back); SQLite runs the two one after the other. Either
way the work is done once, and the answer is recorded (:func:`record`) in the
same transaction as the work.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection, Row, delete, select, update

from billportal.storage import schema as t
from billportal.storage.dialect import insert_or_nothing


class Key(Protocol):
    """An idempotency key and the request it came with."""

    @property
    def key(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def request_hash(self) -> bytes: ...


def reserve(conn: Connection, company_id: int, key: Key, *, now: int, ttl: int) -> bool:
    """Take ``key`` for this request (False: another request holds it, and has answered)."""
    values = {
        "company_id": company_id,
        "key": key.key,
        "method": key.method,
        "path": key.path,
        "request_hash": key.request_hash,
        "status_code": 0,
        "response_body": "",
        "created_at": now,
    }
    c = t.idempotency_keys.c
    statement = insert_or_nothing(conn, t.idempotency_keys, values, ("company_id", "key")).returning(c.key)
    if conn.execute(statement).first() is not None:
        return True
    # An expired key may be used again, for another request.
    renewed = conn.execute(
        update(t.idempotency_keys)
        .where(c.company_id == company_id, c.key == key.key, c.created_at <= now - ttl)
        .values({name: value for name, value in values.items() if name not in ("company_id", "key")})
    )
    return bool(renewed.rowcount == 1)


def stored(conn: Connection, company_id: int, key: str) -> Row[Any] | None:
    c = t.idempotency_keys.c
    return conn.execute(select(t.idempotency_keys).where(c.company_id == company_id, c.key == key)).first()


def record(
    conn: Connection, company_id: int, key: str, *, status_code: int, sealed_body: str, now: int, ttl: int
) -> None:
    """Keep the answer to the reserved key; the company's expired keys go on the way."""
    c = t.idempotency_keys.c
    conn.execute(
        update(t.idempotency_keys)
        .where(c.company_id == company_id, c.key == key)
        .values(status_code=status_code, response_body=sealed_body)
    )
    conn.execute(delete(t.idempotency_keys).where(c.company_id == company_id, c.created_at <= now - ttl))
