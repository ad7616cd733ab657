"""Email sign-in's queries: customers by address, the emailed links and their codes, and the sign-in they make."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from billportal.storage import schema as t
from billportal.storage.records import EmailSignIn, Session, SignInEvent

MAX_CUSTOMERS_PER_ADDRESS = 5  # links sent for one address at once, at most


def customers_by_email(conn: Connection, company_id: int, email: str) -> list[int]:
    """The ids of the company's customers whose address is ``email`` (already lower case), a few at most."""
    c = t.customers.c
    query = (
        select(c.id)
        .where(c.company_id == company_id, func.lower(c.email) == email)
        .order_by(c.id)
        .limit(MAX_CUSTOMERS_PER_ADDRESS)
    )
    return [int(row) for row in conn.execute(query).scalars()]


def insert_link(
    conn: Connection,
    *,
    company_id: int,
    customer_id: int,
    email: str,
    link_hash: bytes,
    code_hash: bytes,
    page: str,
    now: int,
    expires_at: int,
    contact_id: int | None = None,
) -> None:
    conn.execute(
        insert(t.email_sign_ins).values(
            company_id=company_id,
            customer_id=customer_id,
            email=email,
            link_hash=link_hash,
            code_hash=code_hash,
            page=page,
            created_at=now,
            expires_at=expires_at,
            contact_id=contact_id,
        )
    )


def _record(row: Any) -> EmailSignIn:
    return EmailSignIn(
        id=row.id,
        company_id=row.company_id,
        customer_id=row.customer_id,
        email=row.email,
        link_hash=row.link_hash,
        code_hash=row.code_hash,
        page=row.page,
        tries=row.tries,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        contact_id=row.contact_id,
    )


def link_by_hash(conn: Connection, company_id: int, link_hash: bytes) -> EmailSignIn | None:
    c = t.email_sign_ins.c
    row = conn.execute(select(t.email_sign_ins).where(c.link_hash == link_hash, c.company_id == company_id)).first()
    return None if row is None else _record(row)


def live_for_email(conn: Connection, company_id: int, email: str, now: int) -> list[EmailSignIn]:
    """The address's links that are neither used nor expired, newest first."""
    c = t.email_sign_ins.c
    query = (
        select(t.email_sign_ins)
        .where(c.company_id == company_id, c.email == email, c.expires_at > now, c.used_at.is_(None))
        .order_by(c.id.desc())
        .limit(MAX_CUSTOMERS_PER_ADDRESS)
    )
    return [_record(row) for row in conn.execute(query)]


def use_try(conn: Connection, link_id: int, now: int, max_tries: int) -> bool:
    """Spend one of the code's tries; False if none is left (or the link is used or expired).

    One conditional UPDATE: concurrent guesses on any process never get more than ``max_tries``.
    """
    c = t.email_sign_ins.c
    spent = conn.execute(
        update(t.email_sign_ins)
        .where(c.id == link_id, c.tries < max_tries, c.used_at.is_(None), c.expires_at > now)
        .values(tries=c.tries + 1)
    )
    return int(spent.rowcount) == 1


def claim(conn: Connection, link_id: int, now: int) -> bool:
    """Mark the link used; False if it was used already or has expired.

    One conditional UPDATE: of two presses at once, on any process, one wins.
    """
    c = t.email_sign_ins.c
    claimed = conn.execute(
        update(t.email_sign_ins).where(c.id == link_id, c.used_at.is_(None), c.expires_at > now).values(used_at=now)
    )
    return int(claimed.rowcount) == 1


def prune(conn: Connection, now: int) -> int:
    """Delete the links that have expired."""
    c = t.email_sign_ins.c
    return int(conn.execute(t.email_sign_ins.delete().where(c.expires_at <= now)).rowcount)


def insert_session(conn: Connection, session: Session) -> None:
    conn.execute(
        insert(t.sessions).values(
            id_hash=session.id_hash,
            company_id=session.company_id,
            customer_id=session.customer_id,
            csrf_token=session.csrf_token,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            expires_at=session.expires_at,
            device=session.device,
            contact_id=session.contact_id,
            email=session.email,
        )
    )


def insert_event(conn: Connection, event: SignInEvent) -> None:
    conn.execute(
        insert(t.sign_in_events).values(
            company_id=event.company_id,
            at=event.at,
            result=event.result,
            reason=event.reason,
            customer_id=event.customer_id,
            issuer=event.issuer,
            kid=event.kid,
            jti=event.jti,
            ip=event.ip,
            user_agent=event.user_agent,
            method=event.method,
            contact_id=event.contact_id,
        )
    )
