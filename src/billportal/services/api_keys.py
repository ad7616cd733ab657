"""The REST API's keys: making, revoking and checking them; each change goes to the audit trail.

The dashboard (Settings > Developers > API keys) and ``billportal api-key`` both
call these functions, so a change means the same and is recorded the same
wherever it is made. A key is stored only as its SHA-256, and the audit detail
names a key by its prefix and name, never by the key itself.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

from sqlalchemy import Connection

from billportal.core.bounds import MAX_SERIAL_ID
from billportal.core.i18n import N_
from billportal.services import audit
from billportal.services.audit import Actor
from billportal.storage import api_keys as rows
from billportal.storage.records import ApiCaller, ApiKeyInfo, Company, NewApiKey
from billportal.storage.store import Store

KEY_PREFIX: Final = "bp_live_"
_PREFIX_LENGTH: Final = len(KEY_PREFIX) + 8  # what lists show: "bp_live_ab12CD34"
MAX_KEY_LENGTH: Final = 200
LAST_USED_RESOLUTION: Final = 60  # a key's last-used time is written at most once a minute
MAX_NAME_LENGTH: Final = 100
_MAX_REFERENCE_LENGTH: Final = 40
# What a key may do, chosen when it is made: scope -> what it allows, as the dashboard and the docs say it.
SCOPES: Final[dict[str, str]] = {
    "documents:read": N_("Read customers, invoices, payments, credit notes and estimates"),
    "documents:write": N_("Create, change, void and delete customers and documents"),
    "sign_in_links": N_("Make sign-in links for any customer"),
    "sso_keys": N_("List, rotate and revoke the SSO keys (a rotation answers the new key)"),
    "sign_in_events:read": N_("Read the sign-in log"),
    "payment_settings": N_("Read and change the payment settings, the gateway's secrets included (write-only)"),
    "webhooks": N_(
        "Manage webhook endpoints (a new one, or a rotation, answers its signing secret) and their deliveries"
    ),
    "company": N_("Read and change the company's settings (name, address, tax id, branding, payment instructions)"),
}
# A key made without naming scopes (``billportal api-key create`` without --scope, keys made before
# scopes): everything but the SSO keys and the payment settings, which only a key made for them can
# read or change (the gateway's secret key decides where customers' money goes).
DEFAULT_SCOPES: Final = ("documents:read", "documents:write", "sign_in_links", "sign_in_events:read")


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def name_problem(name: str) -> str | None:
    """Why a key's name (already stripped) is refused, or None."""
    if not name:
        return "Give the key a name, such as “billing sync”, to tell it apart from your other keys."
    if len(name) > MAX_NAME_LENGTH:
        return f"Use at most {MAX_NAME_LENGTH} characters."
    if not name.isprintable():
        return "A name cannot contain line breaks or control characters."
    return None


def scopes_of(chosen: set[str] | list[str] | tuple[str, ...]) -> tuple[str, ...] | None:
    """The chosen scopes in their usual order; None if one is unknown or none is chosen."""
    if not chosen or not set(chosen) <= SCOPES.keys():
        return None
    return tuple(scope for scope in SCOPES if scope in chosen)


def key_reference(raw: str) -> int | str | None:
    """A key's id or its shown prefix (``bp_live_ab12CD34``, a trailing … allowed); None if it is neither."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 19:
        number = int(raw)
        return number if number <= MAX_SERIAL_ID else None
    prefix = raw.rstrip("…")
    if prefix.startswith(KEY_PREFIX) and len(prefix) <= _MAX_REFERENCE_LENGTH:
        return prefix
    return None


def live_key(keys: list[ApiKeyInfo], reference: int | str | None) -> ApiKeyInfo | None:
    """The key of ``keys`` (one company's) that ``reference`` names, if it is not revoked."""
    return next(
        (k for k in keys if k.revoked_at is None and reference in (k.id, k.prefix)),
        None,
    )


def _named(info: ApiKeyInfo) -> str:
    return f"{info.prefix}… ({info.name or 'unnamed'})"


async def create(
    store: Store, company: Company, name: str, actor: Actor, now: int, *, scopes: tuple[str, ...]
) -> NewApiKey:
    """A new key for the company (``name``, ``scopes`` checked by the caller); its plaintext is in the answer only."""
    key = KEY_PREFIX + secrets.token_urlsafe(30)

    def change(conn: Connection) -> NewApiKey:
        info = rows.insert(
            conn, company.id, prefix=key[:_PREFIX_LENGTH], key_hash=hash_key(key), name=name, scopes=scopes, now=now
        )
        detail = f"{_named(info)}, scopes: {', '.join(scopes)}"
        audit.record_in(conn, actor, "api_key.created", now, company_ids=[company.id], detail=detail)
        return NewApiKey(key, info)

    return await store.write(change)


async def revoke(store: Store, company: Company, reference: int | str, actor: Actor, now: int) -> ApiKeyInfo | None:
    """Revoke a live key of the company at once; None if the company has no such live key."""

    def change(conn: Connection) -> ApiKeyInfo | None:
        revoked = rows.revoke(conn, company.id, reference, now)
        if revoked is not None:
            audit.record_in(conn, actor, "api_key.revoked", now, company_ids=[company.id], detail=_named(revoked))
        return revoked

    return await store.write(change)


async def keys_of(store: Store, company_id: int, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
    """The company's keys, newest first."""
    return await store.read(lambda conn: rows.infos(conn, company_id, include_revoked=include_revoked))


async def authenticate(store: Store, presented: str, *, now: int) -> ApiCaller | None:
    """The caller a presented key belongs to, or None (unknown, malformed or revoked, alike)."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_LENGTH:
        return None
    digest = hash_key(presented)
    row = await store.read(lambda conn: rows.by_hash(conn, digest))
    if row is None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        key_id = row.id
        await store.write(lambda conn: rows.touch(conn, key_id, now))
    return ApiCaller(
        company_id=row.company_id,
        username=row.username,
        key_id=row.id,
        prefix=row.prefix,
        scopes=frozenset(row.scopes.split()),
    )
