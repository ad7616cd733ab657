"""A company's own settings: what its customers see of it (its name, accent colour, time zone, payment instructions).

Its single sign-on is :mod:`billportal.services.sso`. Each change goes to the
audit trail, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sqlalchemy import Connection

from billportal.core.errors import Refused
from billportal.services import audit
from billportal.services.audit import Actor
from billportal.storage import companies
from billportal.storage.records import Company
from billportal.storage.store import Store

PROFILE_FIELDS: Final = ("name", "accent_color", "time_zone", "payment_instructions")


async def update_profile(store: Store, company: Company, values: Mapping[str, str], actor: Actor, now: int) -> None:
    """Change what customers see of the company (``values`` checked by the caller, or refused here)."""
    unknown = set(values) - set(PROFILE_FIELDS)
    if unknown:
        raise Refused("unknown_field", f"not company settings: {', '.join(sorted(unknown))}")
    changed = sorted(name for name, value in values.items() if getattr(company, name) != value)
    if not changed:
        return

    def change(conn: Connection) -> None:
        companies.update_settings(conn, company.id, company.username, {**values, "updated_at": now})
        audit.record_in(conn, actor, "company.updated", now, company_ids=[company.id], detail=", ".join(changed))

    await store.write(change)
