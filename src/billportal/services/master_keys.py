"""Master key rotation: every SSO key (and payment gateway secret) re-sealed under the current master key.

The master key (``BILLPORTAL_MASTER_KEY``) seals secrets at rest; it is not an
SSO key and not an API key. After a new master key is set, with the old one in
``BILLPORTAL_PREVIOUS_MASTER_KEYS``, ``billportal master-key reencrypt`` re-seals
every stored SSO key and gateway secret under the new one, so that the old one can be dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from billportal.core.crypto import Sealed
from billportal.services.gateways import GATEWAY_SEAL_PURPOSE
from billportal.services.webhooks import SECRET_PURPOSE as WEBHOOK_SECRET_PURPOSE
from billportal.storage import companies
from billportal.storage import payments as stored_payments
from billportal.storage import webhooks as stored_webhooks
from billportal.storage.store import Store


@dataclass(frozen=True, slots=True)
class Reencrypted:
    """What a re-encryption did: keys re-sealed, and keys already under the current master key."""

    resealed: int
    already_current: int
    master_key_id: str
    gateway_secrets_resealed: int = 0
    webhook_secrets_resealed: int = 0


async def reencrypt_sso_keys(store: Store) -> Reencrypted:
    """Re-seal each SSO key not sealed by the current master key, opening it with whichever key sealed it.

    One transaction: if any key cannot be opened, :class:`~billportal.core.crypto.SealError`
    is raised and no row changes, so no key is ever lost half-way.
    """
    master_keys = store.master_keys
    current = master_keys.current_id

    def change(conn: Connection) -> Reencrypted:
        keys = companies.sealed_sso_keys(conn)
        stale = [(key_id, company_id, sealed) for key_id, company_id, sealed in keys if sealed.master_key_id != current]
        for key_id, company_id, sealed in stale:
            secret = master_keys.unseal(sealed, companies.SSO_KEY_PURPOSE, company_id)
            resealed = master_keys.seal(secret, companies.SSO_KEY_PURPOSE, company_id)
            companies.reseal_sso_key(conn, key_id, sealed, resealed)
        gateway_secrets = 0
        for company_id, column, text in stored_payments.sealed_secrets(conn):
            old = Sealed.from_text(text)
            if old.master_key_id != current:
                secret = master_keys.unseal(old, GATEWAY_SEAL_PURPOSE, company_id)
                new = master_keys.seal(secret, GATEWAY_SEAL_PURPOSE, company_id)
                stored_payments.reseal_secret(conn, company_id, column, text, new.as_text())
                gateway_secrets += 1
        webhook_secrets = 0
        for endpoint_id, company_id, column, text in stored_webhooks.sealed_secrets(conn):
            old = Sealed.from_text(text)
            if old.master_key_id != current:
                secret = master_keys.unseal(old, WEBHOOK_SECRET_PURPOSE, company_id)
                new = master_keys.seal(secret, WEBHOOK_SECRET_PURPOSE, company_id)
                stored_webhooks.reseal_secret(conn, endpoint_id, column, text, new.as_text())
                webhook_secrets += 1
        return Reencrypted(
            resealed=len(stale),
            already_current=len(keys) - len(stale),
            master_key_id=current,
            gateway_secrets_resealed=gateway_secrets,
            webhook_secrets_resealed=webhook_secrets,
        )

    result = await store.write(change)
    if store.company_cache is not None:
        await store.company_cache.drop_all()
    for username in await store.read(companies.usernames):
        store.forget_company(username)
    return result


@dataclass(frozen=True, slots=True)
class SealCheck:
    """How many stored SSO keys a configured master key sealed (so opens), and how many none did."""

    opened: int
    unopened: int

    @property
    def usable(self) -> bool:
        """False when keys are stored and none opens: the master key is wrong or missing."""
        return self.opened > 0 or self.unopened == 0


async def check_sso_keys(store: Store) -> SealCheck:
    """Whether the configured master keys are the ones that sealed the stored SSO keys (a start-up check).

    Each sealed value names the master key that sealed it (a fingerprint of the key),
    so a wrong or missing key shows without decrypting anything: a worker starts
    without loading AES, and a company whose key will not open is still found on its
    first sign-in (answered 503, logged).
    """
    keys = await store.read(companies.sealed_sso_keys)
    opened = sum(1 for _key_id, _company_id, sealed in keys if store.master_keys.sealed_it(sealed))
    return SealCheck(opened=opened, unopened=len(keys) - opened)
