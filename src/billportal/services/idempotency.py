"""Exactly-once writes for the REST API's ``Idempotency-Key``.

The key is reserved in the same transaction as the work it guards, before the
work (:func:`billportal.storage.idempotency.reserve`); the answer is kept in
that transaction too, sealed (some answers hold a new SSO key or a sign-in
link). A retry with the same key and request gets the first answer again; a
concurrent duplicate waits for the first to finish and then gets its answer; the
same key with another request is refused. If the work is refused, nothing is
kept, and the key may be used again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import Connection

from billportal.core.crypto import MasterKeys, Sealed, SealError
from billportal.core.errors import Refused
from billportal.storage import idempotency as rows
from billportal.storage.store import Store

TTL: Final = 24 * 3600  # seconds a key and its answer are kept
_PURPOSE: Final = "idempotent-response"

Work = Callable[[Connection], tuple[int, str]]  # in the transaction: (status code, JSON text)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A write's ``Idempotency-Key`` and what it was sent with."""

    key: str
    method: str
    path: str
    request_hash: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to a write: status and JSON text; ``replayed`` when it is the stored answer of an earlier request."""

    status_code: int
    body: str = field(repr=False)
    replayed: bool = False


def once(
    conn: Connection, master_keys: MasterKeys, company_id: int, key: Idempotency, *, now: int, work: Work
) -> Outcome:
    """Run ``work`` in this transaction unless ``key`` already has an answer; return the answer."""
    if rows.reserve(conn, company_id, key, now=now, ttl=TTL):
        status, body = work(conn)
        sealed = master_keys.seal(body.encode("utf-8"), _PURPOSE, company_id).as_text()
        rows.record(conn, company_id, key.key, status_code=status, sealed_body=sealed, now=now, ttl=TTL)
        return Outcome(status, body)
    return _replay(conn, master_keys, company_id, key)


def _replay(conn: Connection, master_keys: MasterKeys, company_id: int, key: Idempotency) -> Outcome:
    row = rows.stored(conn, company_id, key.key)
    if row is None or (row.method, row.path, bytes(row.request_hash)) != (key.method, key.path, key.request_hash):
        raise Refused(
            "idempotency_key_reused",
            "this Idempotency-Key came before with another request; use a new key for a new request",
            "Idempotency-Key",
        )
    try:
        body = master_keys.unseal(Sealed.from_text(row.response_body), _PURPOSE, company_id).decode("utf-8")
    except SealError:
        raise Refused("idempotency_key_reused", "the stored answer cannot be read any more; use a new key") from None
    return Outcome(row.status_code, body, replayed=True)


async def earlier(store: Store, company_id: int, key: Idempotency, *, now: int) -> Outcome | None:
    """The answer ``key`` got before (None: it has none yet), for writes that span several transactions;
    Refused when the key came with another request."""

    def find(conn: Connection) -> Outcome | None:
        row = rows.stored(conn, company_id, key.key)
        if row is None or row.created_at <= now - TTL:
            return None
        return _replay(conn, store.master_keys, company_id, key)

    return await store.read(find)


async def run(store: Store, company_id: int, key: Idempotency | None, *, now: int, work: Work) -> Outcome:
    """Run ``work`` in one transaction: exactly once per ``key`` when there is one."""
    if key is None:
        status, body = await store.write(work)
        return Outcome(status, body)
    return await store.write(lambda conn: once(conn, store.master_keys, company_id, key, now=now, work=work))
