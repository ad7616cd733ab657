"""Queries for companies and their SSO keys: functions of a ``Connection``, run inside the caller's transaction.

A change to a company calls :func:`changed`, which bumps the company's version
in the same transaction, so that :meth:`Store.write
<billportal.storage.store.Store.write>` drops every cached copy of its settings
once the transaction has committed (and not before, when another process could
read the old rows back into the cache), and the shared copy refuses any older
version written back later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Connection, delete, func, select, update

from billportal.core.crypto import Sealed
from billportal.core.errors import Refused
from billportal.storage import schema as t
from billportal.storage.bounds import check_row
from billportal.storage.dialect import insert_or_nothing
from billportal.storage.records import CompanyRows, SsoKeyInfo

CHANGED_COMPANIES: Final = "billportal.changed_companies"
SSO_KEY_PURPOSE: Final = "sso-key"  # what a sealed SSO key is bound to (with its company)
_EDITABLE: Final = frozenset(t.companies.c.keys()) - {"id", "username", "created_at", "version"}


def changed(conn: Connection, username: str) -> None:
    """Bump the company's version, and have every cached copy dropped once this transaction commits."""
    versions: dict[str, int] = conn.info.setdefault(CHANGED_COMPANIES, {})
    if username in versions:
        return  # once per transaction
    c = t.companies.c
    version = conn.execute(
        update(t.companies).where(c.username == username).values(version=c.version + 1).returning(c.version)
    ).scalar()
    versions[username] = int(version or 0)


def rows(conn: Connection, username: str) -> CompanyRows | None:
    """The company's row and its SSO key rows (keys still sealed), as processes share them."""
    row = conn.execute(select(t.companies).where(t.companies.c.username == username)).first()
    if row is None:
        return None
    keys = conn.execute(
        select(t.sso_keys).where(t.sso_keys.c.company_id == row.id).order_by(t.sso_keys.c.id.desc())
    ).all()
    return CompanyRows(
        company=dict(row._mapping),
        keys=[
            {
                "kid": k.kid,
                "state": k.state,
                "retiring_until": k.retiring_until,
                "master_key_id": k.master_key_id,
                "sealed": bytes(k.secret_encrypted),
            }
            for k in keys
        ],
    )


def insert(conn: Connection, username: str, name: str, now: int, profile: Mapping[str, Any] | None = None) -> int:
    """A new company (with its checked ``profile`` settings); Refused ``company_exists`` if the username is taken."""
    values = {**(profile or {}), "username": username, "name": name, "created_at": now, "updated_at": now}
    check_row(t.companies, values)
    company_id = conn.execute(insert_or_nothing(conn, t.companies, values).returning(t.companies.c.id)).scalar()
    if company_id is None:
        raise Refused("company_exists", f"a company with username {username!r} already exists", "username")
    changed(conn, username)
    return int(company_id)


def lock(conn: Connection, company_id: int) -> str:
    """Lock the company's row until the transaction ends (PostgreSQL); return its username.

    Changes to a company's SSO keys take this lock first, so that two rotations
    at once run one after the other and never leave two active keys.
    """
    c = t.companies.c
    username = conn.execute(select(c.username).where(c.id == company_id).with_for_update()).scalar()
    if username is None:
        raise Refused("not_found", "no such company")
    return str(username)


def update_settings(conn: Connection, company_id: int, username: str, values: Mapping[str, Any]) -> None:
    """Change company settings (policy, URLs, display); the caller validates."""
    unknown = set(values) - _EDITABLE
    if unknown:
        raise ValueError(f"unknown company fields: {sorted(unknown)}")
    check_row(t.companies, values)
    conn.execute(update(t.companies).where(t.companies.c.id == company_id).values(**values))
    changed(conn, username)


def default_currency(conn: Connection, company_id: int) -> str:
    """The currency a new customer of the company gets when none is given (USD for a company unknown)."""
    c = t.companies.c
    found = conn.execute(select(c.default_currency).where(c.id == company_id)).scalar()
    return str(found or "USD")


def save_logo(conn: Connection, company_id: int, content_type: str, image: bytes, *, sha256: str, now: int) -> None:
    """Keep the company's logo (the caller re-encoded it), replacing any it had."""
    delete_logo(conn, company_id)
    conn.execute(
        t.company_logos.insert().values(
            company_id=company_id, content_type=content_type, image=image, sha256=sha256, updated_at=now
        )
    )


def delete_logo(conn: Connection, company_id: int) -> None:
    conn.execute(delete(t.company_logos).where(t.company_logos.c.company_id == company_id))


def logo(conn: Connection, company_id: int) -> tuple[str, bytes] | None:
    """The company's logo as (content type, bytes), or None."""
    c = t.company_logos.c
    row = conn.execute(select(c.content_type, c.image).where(c.company_id == company_id)).first()
    return None if row is None else (str(row.content_type), bytes(row.image))


def end_sessions_until(conn: Connection, company_id: int, cutoff: int) -> int:
    """Delete the company's customer sessions created at or before ``cutoff``; return how many."""
    s = t.sessions.c
    ended = conn.execute(delete(t.sessions).where(s.company_id == company_id, s.created_at <= cutoff))
    return int(ended.rowcount)


# -- SSO keys ------------------------------------------------------------------------------


def insert_sso_key(conn: Connection, company_id: int, kid: str, sealed: Sealed, *, weak: bool, now: int) -> None:
    """Store a sealed SSO key as the company's active key."""
    conn.execute(
        t.sso_keys.insert().values(
            company_id=company_id,
            kid=kid,
            secret_encrypted=sealed.blob,
            master_key_id=sealed.master_key_id,
            weak=weak,
            state="active",
            created_at=now,
        )
    )


def active_kid(conn: Connection, company_id: int) -> str | None:
    k = t.sso_keys.c
    kid = conn.execute(select(k.kid).where(k.company_id == company_id, k.state == "active")).scalar()
    return None if kid is None else str(kid)


def retire_active_sso_key(conn: Connection, company_id: int, until: int) -> None:
    """The active key keeps verifying until ``until``, and signs nothing new."""
    k = t.sso_keys.c
    conn.execute(
        update(t.sso_keys)
        .where(k.company_id == company_id, k.state == "active")
        .values(state="retiring", retiring_until=until)
    )


def revoke_sso_keys(conn: Connection, company_id: int, now: int, kid: str | None = None) -> int:
    """Revoke the active and retiring keys at once (or the one retiring key ``kid``); return how many."""
    k = t.sso_keys.c
    where = [k.company_id == company_id]
    where.append(k.state == "retiring" if kid is not None else k.state.in_(("active", "retiring")))
    if kid is not None:
        where.append(k.kid == kid)
    return int(conn.execute(update(t.sso_keys).where(*where).values(state="revoked", revoked_at=now)).rowcount)


def sso_key_infos(conn: Connection, company_id: int) -> list[SsoKeyInfo]:
    """The company's SSO keys, newest first (never the secrets)."""
    c = t.sso_keys.c
    rows = conn.execute(
        select(c.kid, c.state, c.weak, c.created_at, c.last_used_at, c.retiring_until, c.revoked_at)
        .where(c.company_id == company_id)
        .order_by(c.id.desc())
    ).all()
    return [
        SsoKeyInfo(
            kid=r.kid,
            state=r.state,
            weak=bool(r.weak),
            created_at=r.created_at,
            last_used_at=r.last_used_at,
            retiring_until=r.retiring_until,
            revoked_at=r.revoked_at,
        )
        for r in rows
    ]


def sealed_sso_keys(conn: Connection) -> list[tuple[int, int, Sealed]]:
    """Every SSO key of every company: (row id, company id, sealed key), for re-sealing."""
    k = t.sso_keys.c
    found = conn.execute(select(k.id, k.company_id, k.master_key_id, k.secret_encrypted).order_by(k.id)).all()
    return [(r.id, r.company_id, Sealed(r.master_key_id, bytes(r.secret_encrypted))) for r in found]


def reseal_sso_key(conn: Connection, key_id: int, old: Sealed, new: Sealed) -> None:
    k = t.sso_keys.c
    conn.execute(
        update(t.sso_keys)
        .where(k.id == key_id, k.master_key_id == old.master_key_id)
        .values(secret_encrypted=new.blob, master_key_id=new.master_key_id)
    )


def usernames(conn: Connection) -> list[str]:
    return [str(u) for u in conn.execute(select(t.companies.c.username)).scalars()]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.companies)).scalar_one())
