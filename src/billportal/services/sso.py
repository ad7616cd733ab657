"""A company's single sign-on: its creation with a first SSO key, rotation, revocation, policy and cutoffs.

The dashboard, the API and ``billportal sso-key`` all call these functions, so
a change means the same and is recorded the same wherever it is made. Each
change and its audit entry are one transaction; a change to the SSO keys first
locks the company's row, so that changes made at once (two rotations, on two
processes) run one after the other and leave exactly one active key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection

from billportal.core.clock import human_time
from billportal.core.i18n import N_
from billportal.services import audit
from billportal.services import companies as profile_service
from billportal.services.audit import Actor
from billportal.sso import keys as sso_keys
from billportal.sso.tokens import VerificationKey
from billportal.storage import companies
from billportal.storage.records import Company, SsoKeyInfo
from billportal.storage.store import Store

# How long a rotated-out key keeps signing customers in, as offered at rotation.
GRACE_PERIODS: Final[dict[str, int]] = {"none": 0, "1h": 3600, "24h": 86400, "7d": 7 * 86400}
GRACE_LABELS: Final[dict[str, str]] = {
    "none": N_("None: the old key stops now"),
    "1h": N_("1 hour"),
    "24h": N_("24 hours"),
    "7d": N_("7 days"),
}


def active_key(company: Company) -> VerificationKey | None:
    """The key new links are signed with."""
    return next((key for key in company.sso_keys if key.state == "active"), None)


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of a rotation: the new key, and what became of the old one."""

    kid: str
    key: str
    previous_kid: str | None
    retiring_until: int | None


async def create_company(
    store: Store,
    username: str,
    name: str,
    sso_key: str,
    *,
    weak: bool,
    now: int,
    profile: Mapping[str, Any] | None = None,
) -> tuple[int, str]:
    """A new company with its first, active SSO key (generated, or imported); return (company id, kid).

    It starts with the defaults of :mod:`billportal.services.companies`, and the settings in
    ``profile`` (checked there: Refused if one is wrong).
    """
    values = profile_service.new_company_values(name, profile or {})

    def change(conn: Connection) -> tuple[int, str]:
        company_id = companies.insert(conn, username, name, now, values)
        kid = sso_keys.generate_kid()
        sealed = store.master_keys.seal(sso_key.encode("utf-8"), companies.SSO_KEY_PURPOSE, company_id)
        companies.insert_sso_key(conn, company_id, kid, sealed, weak=weak, now=now)
        return company_id, kid

    return await store.write(change)


def rotate_in(conn: Connection, store: Store, company: Company, grace: str, *, actor: Actor, now: int) -> Rotation:
    """Rotate inside the caller's transaction (the API's, which also keeps its idempotent answer)."""
    seconds = GRACE_PERIODS[grace]
    companies.lock(conn, company.id)
    previous = companies.active_kid(conn, company.id)
    if seconds:
        companies.retire_active_sso_key(conn, company.id, now + seconds)
    else:
        # No grace: the active key stops now, and so does any key still retiring from an earlier rotation.
        companies.revoke_sso_keys(conn, company.id, now)
    key, kid = sso_keys.generate_sso_key(), sso_keys.generate_kid()
    sealed = store.master_keys.seal(key.encode("utf-8"), companies.SSO_KEY_PURPOSE, company.id)
    companies.insert_sso_key(conn, company.id, kid, sealed, weak=False, now=now)
    companies.changed(conn, company.username)
    retiring_until = now + seconds if previous is not None and seconds else None
    if previous is None:
        detail = f"new key {kid} active"
    elif retiring_until is not None:
        until = human_time(retiring_until, company.time_zone, seconds=True)
        detail = f"new key {kid} active; {previous} retiring until {until} ({GRACE_LABELS[grace]})"
    else:
        detail = f"new key {kid} active; {previous} revoked at once (no grace period)"
    audit.record_in(conn, actor, "sso.key_rotated", now, company_ids=[company.id], detail=detail)
    return Rotation(kid, key, previous, retiring_until)


async def rotate(store: Store, company: Company, grace: str, actor: Actor, now: int) -> Rotation:
    """A new generated key becomes active; the old one retires after ``grace`` (a GRACE_PERIODS key)."""
    return await store.write(lambda conn: rotate_in(conn, store, company, grace, actor=actor, now=now))


def revoke_in(conn: Connection, company: Company, kid: str, *, actor: Actor, now: int) -> bool:
    """Revoke a retiring key early, in the caller's transaction; False unless ``kid`` is a retiring key."""
    # Only a kid the company has reaches the database (PostgreSQL refuses a NUL in a string).
    if not any(key.kid == kid for key in company.sso_keys):
        return False
    companies.lock(conn, company.id)
    if not companies.revoke_sso_keys(conn, company.id, now, kid=kid):
        return False
    companies.changed(conn, company.username)
    audit.record_in(conn, actor, "sso.key_revoked", now, company_ids=[company.id], detail=f"key {kid}")
    return True


async def revoke(store: Store, company: Company, kid: str, actor: Actor, now: int) -> bool:
    """Revoke a retiring key early; False if ``kid`` is not a retiring key of the company."""
    return await store.write(lambda conn: revoke_in(conn, company, kid, actor=actor, now=now))


async def sso_keys_of(store: Store, company_id: int) -> list[SsoKeyInfo]:
    """The company's SSO keys as admins see them, newest first (never the secrets)."""
    return await store.read(lambda conn: companies.sso_key_infos(conn, company_id))


async def _change_settings(
    store: Store, company: Company, values: dict[str, Any], *, actor: Actor, action: str, now: int, detail: str = ""
) -> None:
    def change(conn: Connection) -> None:
        companies.update_settings(conn, company.id, company.username, {**values, "updated_at": now})
        audit.record_in(conn, actor, action, now, company_ids=[company.id], detail=detail)

    await store.write(change)


async def reveal(store: Store, company: Company, kid: str, actor: Actor, now: int) -> str | None:
    """The active key's secret, recorded as revealed; None if ``kid`` is not the active key."""
    key = active_key(company)
    if key is None or key.kid != kid:
        return None
    await audit.record(store, actor, "sso.key_revealed", now, company_ids=[company.id], detail=f"key {kid}")
    return key.secret.decode("utf-8")


async def set_enabled(store: Store, company: Company, enabled: bool, actor: Actor, now: int) -> None:
    if company.sso_enabled == enabled:
        return
    action = "sso.enabled" if enabled else "sso.disabled"
    await _change_settings(store, company, {"sso_enabled": enabled}, actor=actor, action=action, now=now)


async def set_email_sign_in(store: Store, company: Company, enabled: bool, actor: Actor, now: int) -> bool:
    """Turn email sign-in on or off for the company's customers; False when it already was."""
    if company.email_sign_in == enabled:
        return False
    action = "sso.email_sign_in_on" if enabled else "sso.email_sign_in_off"
    await _change_settings(store, company, {"email_sign_in": enabled}, actor=actor, action=action, now=now)
    return True


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The editable sign-in policy of a company, as the policy form shows it."""

    leeway: int
    max_lifetime: int | None
    require_jti: bool
    allowed_issuers: tuple[str, ...]
    sign_in_url: str
    sign_out_url: str
    error_url: str
    frame_ancestors: tuple[str, ...] = ()
    email_sign_in: bool = False  # customers may ask for a sign-in link by email (services/email_links.py)

    @classmethod
    def of(cls, company: Company) -> PolicySettings:
        policy = company.policy
        return cls(
            leeway=policy.leeway,
            max_lifetime=policy.max_lifetime,
            require_jti=policy.require_jti,
            allowed_issuers=tuple(sorted(policy.allowed_issuers)),
            sign_in_url=company.sign_in_url,
            sign_out_url=company.sign_out_url,
            error_url=company.error_url,
            frame_ancestors=company.frame_ancestors,
            email_sign_in=company.email_sign_in,
        )

    def columns(self) -> dict[str, Any]:
        """The ``companies`` columns these settings are stored in."""
        return {
            "sso_leeway_seconds": self.leeway,
            "sso_max_lifetime_seconds": self.max_lifetime,
            "sso_require_jti": self.require_jti,
            "sso_allowed_issuers": "\n".join(self.allowed_issuers),
            "sign_in_url": self.sign_in_url,
            "sign_out_url": self.sign_out_url,
            "error_url": self.error_url,
            "frame_ancestors": " ".join(self.frame_ancestors),
            "email_sign_in": self.email_sign_in,
        }


_POLICY_NAMES: Final = {
    "leeway": "leeway",
    "max_lifetime": "maximum link lifetime",
    "require_jti": "single-use links",
    "allowed_issuers": "allowed issuers",
    "sign_in_url": "sign-in URL",
    "sign_out_url": "sign-out URL",
    "error_url": "error URL",
    "frame_ancestors": "sites that may embed the portal",
    "email_sign_in": "email sign-in",
}


def _shown(value: object) -> str:
    if value is None or value in ("", ()):
        return "(none)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


async def update_policy(store: Store, company: Company, new: PolicySettings, actor: Actor, now: int) -> list[str]:
    """Store ``new`` (validated by the caller); return the names of the settings that changed."""
    old = PolicySettings.of(company)
    changes = [
        (label, getattr(old, name), getattr(new, name))
        for name, label in _POLICY_NAMES.items()
        if getattr(old, name) != getattr(new, name)
    ]
    if not changes:
        return []
    detail = "; ".join(f"{label}: {_shown(before)} → {_shown(after)}" for label, before, after in changes)
    await _change_settings(
        store, company, new.columns(), actor=actor, action="sso.policy_changed", now=now, detail=detail
    )
    return [label for label, _, _ in changes]


async def cut_off_links(store: Store, company: Company, actor: Actor, now: int, *, end_sessions: bool = False) -> int:
    """Reject every link issued before ``now`` (and every link without ``iat``).

    ``end_sessions``: also end every customer session made until now (see
    :func:`sign_out_everyone`); return how many ended.
    """
    values: dict[str, Any] = {"sso_iat_cutoff": now}
    if end_sessions:
        values["sso_session_cutoff"] = now

    def change(conn: Connection) -> int:
        companies.update_settings(conn, company.id, company.username, {**values, "updated_at": now})
        ended = companies.end_sessions_until(conn, company.id, now) if end_sessions else 0
        detail = f"cutoff {human_time(now, company.time_zone, seconds=True)}" + (
            f"; every customer signed out ({_sessions(ended)})" if end_sessions else ""
        )
        audit.record_in(conn, actor, "sso.links_cut_off", now, company_ids=[company.id], detail=detail)
        return ended

    return await store.write(change)


async def sign_out_everyone(store: Store, company: Company, actor: Actor, now: int) -> int:
    """End every customer session of the company made until ``now``, in every process; return how many.

    The rows go, and the company's session cutoff ends, at their next request, any copy
    of them (Redis keeps one for 30 seconds) in any process.
    """

    def change(conn: Connection) -> int:
        companies.update_settings(conn, company.id, company.username, {"sso_session_cutoff": now, "updated_at": now})
        ended = companies.end_sessions_until(conn, company.id, now)
        detail = f"every customer signed out ({_sessions(ended)})"
        audit.record_in(conn, actor, "sso.customers_signed_out", now, company_ids=[company.id], detail=detail)
        return ended

    return await store.write(change)


def _sessions(count: int) -> str:
    return f"{count} session{'s' if count != 1 else ''} ended"


async def remove_cutoff(store: Store, company: Company, actor: Actor, now: int) -> None:
    if company.policy.iat_cutoff is None:
        return
    await _change_settings(store, company, {"sso_iat_cutoff": None}, actor=actor, action="sso.cutoff_removed", now=now)


async def sign_out_customer(store: Store, company: Company, customer_id: int, actor: Actor, now: int) -> int:
    """End every session of one customer; return how many ended."""
    ended = await store.end_customer_sessions(company.id, customer_id)
    await audit.record(
        store,
        actor,
        "sso.customer_signed_out",
        now,
        company_ids=[company.id],
        detail=f"customer {customer_id}: {ended} session{'s' if ended != 1 else ''} ended",
    )
    return ended
