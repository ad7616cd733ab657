"""Queries for the REST API's keys, stored only as the SHA-256 of the whole key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select, update

from billportal.storage import schema as t
from billportal.storage.bounds import check_row
from billportal.storage.records import ApiKeyInfo


def _info(row: Row[Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        company_id=row.company_id,
        prefix=row.prefix,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        scopes=tuple(row.scopes.split()),
    )


def insert(
    conn: Connection, company_id: int, *, prefix: str, key_hash: bytes, name: str, scopes: tuple[str, ...], now: int
) -> ApiKeyInfo:
    values = {
        "company_id": company_id,
        "prefix": prefix,
        "key_hash": key_hash,
        "name": name,
        "scopes": " ".join(scopes),
        "created_at": now,
    }
    check_row(t.api_keys, values)
    key_id = conn.execute(t.api_keys.insert().values(**values).returning(t.api_keys.c.id)).scalar_one()
    return _info(conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).one())


def infos(conn: Connection, company_id: int, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
    """The company's keys, newest first."""
    c = t.api_keys.c
    where = [c.company_id == company_id]
    if not include_revoked:
        where.append(c.revoked_at.is_(None))
    return [_info(r) for r in conn.execute(select(t.api_keys).where(*where).order_by(c.id.desc()))]


def revoke(conn: Connection, company_id: int, key_id_or_prefix: int | str, now: int) -> ApiKeyInfo | None:
    """Revoke a live key of the company, by id or by its shown prefix; None if there is no such live key."""
    c = t.api_keys.c
    which = c.id == key_id_or_prefix if isinstance(key_id_or_prefix, int) else c.prefix == key_id_or_prefix
    row = conn.execute(
        select(t.api_keys).where(c.company_id == company_id, which, c.revoked_at.is_(None)).with_for_update()
    ).first()
    if row is None:
        return None
    conn.execute(update(t.api_keys).where(c.id == row.id).values(revoked_at=now))
    return _info(conn.execute(select(t.api_keys).where(c.id == row.id)).one())


def by_hash(conn: Connection, key_hash: bytes) -> Any:
    """The live key with this hash, with its company's username."""
    k, co = t.api_keys.c, t.companies.c
    return conn.execute(
        select(k.id, k.company_id, k.prefix, k.last_used_at, k.scopes, co.username)
        .join(t.companies, co.id == k.company_id)
        .where(k.key_hash == key_hash, k.revoked_at.is_(None))
    ).first()


def touch(conn: Connection, key_id: int, now: int) -> None:
    conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=now))
