"""The mail queue's queries: messages out (written in the caller's transaction), their claims, bounces, preferences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from billportal.storage import schema as t
from billportal.storage.bounds import check_row
from billportal.storage.webhooks import due_in


@dataclass(frozen=True, slots=True)
class MailMessage:
    """One queued email: what is sent, to whom, and how its sending went."""

    id: int
    company_id: int
    customer_id: int | None
    kind: str
    to_address: str
    subject: str
    text_body: str
    html_body: str
    state: str
    attempts: int
    next_attempt_at: int
    last_error: str
    sent_at: int | None
    created_at: int


def _message(row: Any) -> MailMessage:
    m = row._mapping
    return MailMessage(**{name: m[name] for name in MailMessage.__dataclass_fields__})


def insert_message(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Queue a message; False (nothing written) if the company already has one under its ``dedupe_key``."""
    check_row(t.mail_messages, values)
    key = values.get("dedupe_key")
    if key is not None:
        c = t.mail_messages.c
        taken = select(c.id).where(c.company_id == values["company_id"], c.dedupe_key == key).limit(1)
        if conn.execute(taken).first() is not None:
            return False
    conn.execute(insert(t.mail_messages).values(**values))
    return True


def messages(conn: Connection, company_id: int, *, limit: int = 100) -> list[MailMessage]:
    """The company's messages, newest first."""
    c = t.mail_messages.c
    rows = conn.execute(select(t.mail_messages).where(c.company_id == company_id).order_by(c.id.desc()).limit(limit))
    return [_message(row) for row in rows]


# -- preferences


def preferences(conn: Connection, company_id: int) -> dict[str, bool]:
    """The kinds the company turned on or off (the others have their default)."""
    c = t.mail_preferences.c
    rows = conn.execute(select(c.kind, c.enabled).where(c.company_id == company_id))
    return {row.kind: bool(row.enabled) for row in rows}


def set_preference(conn: Connection, company_id: int, kind: str, enabled: bool, now: int) -> None:
    c = t.mail_preferences.c
    conn.execute(delete(t.mail_preferences).where(c.company_id == company_id, c.kind == kind))
    conn.execute(insert(t.mail_preferences).values(company_id=company_id, kind=kind, enabled=enabled, updated_at=now))


# -- bounces


def bounced(conn: Connection, company_id: int, address: str) -> bool:
    c = t.mail_bounces.c
    found = select(c.address).where(c.company_id == company_id, c.address == address.strip().lower())
    return conn.execute(found.limit(1)).first() is not None


def bounced_among(conn: Connection, company_id: int, addresses: list[str]) -> set[str]:
    """Which of these addresses (lower case) bounced."""
    wanted = sorted({a.strip().lower() for a in addresses if a.strip()})
    if not wanted:
        return set()
    c = t.mail_bounces.c
    rows = conn.execute(select(c.address).where(c.company_id == company_id, c.address.in_(wanted)))
    return {row.address for row in rows}


def bounce_reason(conn: Connection, company_id: int, address: str) -> tuple[str, int] | None:
    c = t.mail_bounces.c
    row = conn.execute(
        select(c.reason, c.bounced_at).where(c.company_id == company_id, c.address == address.strip().lower())
    ).first()
    return None if row is None else (row.reason, row.bounced_at)


def mark_bounced(conn: Connection, company_id: int, address: str, reason: str, now: int) -> None:
    address = address.strip().lower()[:254]
    if not bounced(conn, company_id, address):
        conn.execute(
            insert(t.mail_bounces).values(company_id=company_id, address=address, reason=reason[:200], bounced_at=now)
        )


def clear_bounce(conn: Connection, company_id: int, address: str) -> bool:
    c = t.mail_bounces.c
    gone = conn.execute(delete(t.mail_bounces).where(c.company_id == company_id, c.address == address.strip().lower()))
    return bool(gone.rowcount)


# -- sending


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    """A message leased to this process."""

    id: int
    company_id: int
    customer_id: int | None
    kind: str
    to_address: str
    subject: str
    text_body: str
    html_body: str
    attempts: int
    created_at: int


def anything_due(conn: Connection, now: int) -> bool:
    """Whether a pending message is due (a read, so that an idle deliverer takes no write lock)."""
    return due_in(conn, t.mail_messages, now)


def claim(conn: Connection, *, now: int, limit: int, lease: int) -> list[ClaimedMail]:
    """Lease up to ``limit`` due messages, the oldest first (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)."""
    c = t.mail_messages.c
    due = (
        select(c.id)
        .where(c.state == "pending", c.next_attempt_at <= now, c.locked_until <= now)
        .order_by(c.next_attempt_at, c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    conn.execute(update(t.mail_messages).where(c.id.in_(ids)).values(locked_until=now + lease))
    rows = conn.execute(select(t.mail_messages).where(c.id.in_(ids)).order_by(c.id))
    return [ClaimedMail(**{name: row._mapping[name] for name in ClaimedMail.__dataclass_fields__}) for row in rows]


def release(conn: Connection, message_ids: list[int]) -> None:
    """Give back claimed messages unsent (due again at once, to any process)."""
    if message_ids:
        c = t.mail_messages.c
        conn.execute(update(t.mail_messages).where(c.id.in_(message_ids), c.state == "pending").values(locked_until=0))


def finish(
    conn: Connection, message_id: int, *, state: str, error: str, next_attempt_at: int, now: int, forget: bool = False
) -> None:
    """Record a try: ``sent``, ``failed``, ``bounced``, or ``pending`` again (tried at ``next_attempt_at``).

    ``forget`` blanks the message's bodies (one that carried a secret, now sent or given up).
    """
    c = t.mail_messages.c
    blank = {"text_body": "", "html_body": ""} if forget else {}
    conn.execute(
        update(t.mail_messages)
        .where(c.id == message_id)
        .values(
            **blank,
            state=state,
            attempts=c.attempts + 1,
            next_attempt_at=next_attempt_at,
            locked_until=0,
            last_error=error[:200],
            sent_at=now if state == "sent" else None,
            updated_at=now,
        )
    )


def counts(conn: Connection, company_id: int) -> dict[str, int]:
    """How many of the company's messages are in each state."""
    c = t.mail_messages.c
    rows = conn.execute(select(c.state, func.count()).where(c.company_id == company_id).group_by(c.state))
    return {row[0]: int(row[1]) for row in rows}


# -- who and what messages are about


@dataclass(frozen=True, slots=True)
class Branding:
    """What a message shows of its company."""

    id: int
    username: str
    name: str
    accent_color: str
    logo_sha256: str
    support_email: str
    footer_text: str
    time_zone: str
    default_locale: str = "en"  # the language of a customer who has not chosen one


def branding(conn: Connection, company_id: int) -> Branding | None:
    c = t.companies.c
    row = conn.execute(
        select(
            c.id,
            c.username,
            c.name,
            c.accent_color,
            c.logo_sha256,
            c.support_email,
            c.footer_text,
            c.time_zone,
            c.default_locale,
        ).where(c.id == company_id)
    ).first()
    return None if row is None else Branding(*row)


def admin_addresses(conn: Connection, company_id: int, roles: Iterable[str]) -> list[str]:
    """The email addresses of the company's admins in one of ``roles``."""
    a, m = t.admins.c, t.admin_memberships.c
    rows = conn.execute(
        select(a.email)
        .join(t.admin_memberships, m.admin_id == a.id)
        .where(m.company_id == company_id, m.role.in_(list(roles)))
        .order_by(a.id)
    )
    return [row.email for row in rows]


def customers_with_email(conn: Connection, company_id: int, *, after: int = 0, limit: int = 500) -> list[Any]:
    """The company's customers that have an email address, by id, from ``after`` on: (id, name, email, currency)."""
    c = t.customers.c
    rows = conn.execute(
        select(c.id, c.name, c.email, c.currency)
        .where(c.company_id == company_id, c.email != "", c.id > after)
        .order_by(c.id)
        .limit(limit)
    )
    return list(rows)


def companies_with(conn: Connection, kind: str) -> list[int]:
    """The companies that turned ``kind`` on."""
    c = t.mail_preferences.c
    rows = conn.execute(select(c.company_id).where(c.kind == kind, c.enabled.is_(True)).order_by(c.company_id))
    return [row.company_id for row in rows]


def email_sign_in_on(conn: Connection, company_id: int) -> bool:
    """Whether the company lets customers sign in by email (then its messages carry sign-in links)."""
    c = t.companies.c
    return bool(conn.execute(select(c.email_sign_in).where(c.id == company_id)).scalar())
