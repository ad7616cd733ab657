"""Making and revoking a company's REST API keys; each change goes to the audit trail.

The dashboard (Settings > Developers > API keys) and ``billportal api-key`` both
call these functions, so a change means the same and is recorded the same
wherever it is made. The audit detail names a key by its prefix and name, never
by the key itself.
"""

from __future__ import annotations

from typing import Final

from billportal import audit
from billportal.audit import Actor
from billportal.storage.api import KEY_PREFIX, ApiKeyInfo, NewApiKey
from billportal.storage.records import Company
from billportal.storage.store import Store
from billportal.web.convertors import MAX_ID

MAX_NAME_LENGTH: Final = 100
_MAX_REFERENCE_LENGTH: Final = 40


def name_problem(name: str) -> str | None:
    """Why a key's name (already stripped) is refused, or None."""
    if not name:
        return "Give the key a name, such as “billing sync”, to tell it apart from your other keys."
    if len(name) > MAX_NAME_LENGTH:
        return f"Use at most {MAX_NAME_LENGTH} characters."
    if not name.isprintable():
        return "A name cannot contain line breaks or control characters."
    return None


def key_reference(raw: str) -> int | str | None:
    """A key's id or its shown prefix (``bp_live_ab12CD34``, a trailing … allowed); None if it is neither."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 19:
        number = int(raw)
        return number if number <= MAX_ID else None
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


async def create(store: Store, company: Company, name: str, actor: Actor, now: int) -> NewApiKey:
    """A new key for the company (``name`` validated by the caller); its plaintext is in the answer only."""
    created = await store.api.create_key(company.id, name, now=now)
    await audit.record(store, actor, "api_key.created", now, company_ids=[company.id], detail=_named(created.info))
    return created


async def revoke(store: Store, company: Company, reference: int | str, actor: Actor, now: int) -> ApiKeyInfo | None:
    """Revoke a live key of the company at once; None if the company has no such live key."""
    revoked = await store.api.revoke_key(company.id, reference, now=now)
    if revoked is not None:
        await audit.record(store, actor, "api_key.revoked", now, company_ids=[company.id], detail=_named(revoked))
    return revoked
