"""Master key rotation: every SSO key re-sealed under the current master key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from billportal.sso.keys import master_key_id, seal, unseal
from billportal.storage import schema as t
from billportal.storage.backend import Backend


@dataclass(frozen=True, slots=True)
class Reencrypted:
    """What a re-encryption did: keys re-sealed, and keys already under the current master key."""

    resealed: int
    already_current: int
    master_key_id: str


async def reencrypt_sso_keys(backend: Backend, master_key: bytes, previous: Sequence[bytes]) -> Reencrypted:
    """Re-seal each SSO key not sealed by ``master_key``, opening it with ``previous`` (or it).

    One transaction: if any key cannot be opened, :class:`~billportal.sso.keys.SSOKeyError`
    is raised and no row changes, so no key is ever lost half-way.
    """
    current = master_key_id(master_key)
    openers = (master_key, *previous)

    def change(conn: Connection) -> Reencrypted:
        k = t.sso_keys.c
        rows = conn.execute(select(k.id, k.company_id, k.master_key_id, k.secret_encrypted).order_by(k.id)).all()
        stale = [row for row in rows if row.master_key_id != current]
        for row in stale:
            secret = unseal(openers, row.master_key_id, row.company_id, row.secret_encrypted)
            conn.execute(
                update(t.sso_keys)
                .where(k.id == row.id, k.master_key_id == row.master_key_id)
                .values(secret_encrypted=seal(master_key, row.company_id, secret), master_key_id=current)
            )
        return Reencrypted(resealed=len(stale), already_current=len(rows) - len(stale), master_key_id=current)

    return await backend.write(change)
