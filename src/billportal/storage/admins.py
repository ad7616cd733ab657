"""Company admins, their dashboard sessions, and the admin audit trail.

Admin sessions live in their own table, apart from customer sessions, and are
looked up by the SHA-256 of their id, as customer sessions are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from billportal.core.errors import Refused
from billportal.storage import schema as t
from billportal.storage.backend import Backend
from billportal.storage.bounds import check_row
from billportal.storage.dialect import insert_or_nothing
from billportal.storage.records import Admin, AdminSession, AuditEvent, Invitation, Member, Membership


def _admin(row: Row[Any]) -> Admin:
    return Admin(
        id=row.id,
        email=row.email,
        password_hash=row.password_hash,
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
        must_change_password=bool(row.must_change_password),
    )


class AdminStore:
    """Queries for admins, memberships, admin sessions and audit events."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- admins and memberships ------------------------------------------------------

    async def create_admin(
        self,
        email: str,
        password_hash: str,
        *,
        company_id: int,
        must_change_password: bool,
        now: int,
        role: str = "owner",
    ) -> int:
        """A new admin of one company, in ``role``; Refused ``admin_exists`` if the email is taken."""

        def change(conn: Connection) -> int:
            admin_id = insert_admin(conn, email, password_hash, must_change_password=must_change_password, now=now)
            if admin_id is None:
                raise Refused("admin_exists", f"an admin with email {email!r} already exists", "email")
            conn.execute(insert(t.admin_memberships).values(admin_id=admin_id, company_id=company_id, role=role))
            return admin_id

        admin_id: int = await self.backend.write(change)
        return admin_id

    async def admin_by_email(self, email: str) -> Admin | None:
        def query(conn: Connection) -> Admin | None:
            row = conn.execute(select(t.admins).where(t.admins.c.email == email)).first()
            return None if row is None else _admin(row)

        admin: Admin | None = await self.backend.read(query)
        return admin

    async def admin(self, admin_id: int) -> Admin | None:
        def query(conn: Connection) -> Admin | None:
            row = conn.execute(select(t.admins).where(t.admins.c.id == admin_id)).first()
            return None if row is None else _admin(row)

        admin: Admin | None = await self.backend.read(query)
        return admin

    async def grant(self, admin_id: int, company_id: int, role: str = "owner") -> bool:
        """Make an admin an admin of one more company, in ``role``; False if they already were."""

        def change(conn: Connection) -> bool:
            return add_membership(conn, admin_id, company_id, role)

        granted: bool = await self.backend.write(change)
        return granted

    async def memberships(self, admin_id: int) -> list[Membership]:
        """The companies an admin administers, by name."""

        def query(conn: Connection) -> list[Membership]:
            m, c = t.admin_memberships.c, t.companies.c
            rows = conn.execute(
                select(c.id, c.username, c.name, m.role)
                .join_from(t.admin_memberships, t.companies, m.company_id == c.id)
                .where(m.admin_id == admin_id)
                .order_by(c.name, c.id)
            ).all()
            return [Membership(r.id, r.username, r.name, r.role) for r in rows]

        return list(await self.backend.read(query))

    async def members(self, company_id: int) -> list[Admin]:
        """The admins of one company, by email."""
        return [member.admin for member in await self.backend.read(lambda conn: members(conn, company_id))]

    async def set_password(
        self, admin_id: int, password_hash: str, *, must_change: bool, now: int, keep_session: bytes | None = None
    ) -> None:
        """Store a new password hash and end every session of the admin but ``keep_session``."""

        def change(conn: Connection) -> None:
            conn.execute(
                update(t.admins)
                .where(t.admins.c.id == admin_id)
                .values(password_hash=password_hash, password_changed_at=now, must_change_password=must_change)
            )
            s = t.admin_sessions.c
            ending = delete(t.admin_sessions).where(s.admin_id == admin_id)
            if keep_session is not None:
                ending = ending.where(s.id_hash != keep_session)
            conn.execute(ending)

        await self.backend.write(change)

    async def rehash(self, admin_id: int, old_hash: str, new_hash: str) -> None:
        """Upgrade a hash made with older parameters, unless the password changed meanwhile."""

        def change(conn: Connection) -> None:
            a = t.admins.c
            conn.execute(
                update(t.admins).where(a.id == admin_id, a.password_hash == old_hash).values(password_hash=new_hash)
            )

        await self.backend.write(change)

    # -- sessions ----------------------------------------------------------------------

    async def create_session(self, session: AdminSession) -> None:
        """Store a new session; expired sessions of the same admin are cleared on the way."""

        def change(conn: Connection) -> None:
            s = t.admin_sessions.c
            conn.execute(
                delete(t.admin_sessions).where(s.admin_id == session.admin_id, s.expires_at <= session.created_at)
            )
            conn.execute(
                insert(t.admin_sessions).values(
                    id_hash=session.id_hash,
                    admin_id=session.admin_id,
                    company_id=session.company_id,
                    csrf_token=session.csrf_token,
                    created_at=session.created_at,
                    last_seen_at=session.last_seen_at,
                    expires_at=session.expires_at,
                    sudo_until=session.sudo_until,
                )
            )

        await self.backend.write(change)

    async def session(self, id_hash: bytes) -> AdminSession | None:
        def query(conn: Connection) -> AdminSession | None:
            s = t.admin_sessions.c
            row = conn.execute(select(t.admin_sessions).where(s.id_hash == id_hash)).first()
            if row is None:
                return None
            return AdminSession(
                id_hash=row.id_hash,
                admin_id=row.admin_id,
                company_id=row.company_id,
                csrf_token=row.csrf_token,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                expires_at=row.expires_at,
                sudo_until=row.sudo_until,
            )

        session: AdminSession | None = await self.backend.read(query)
        return session

    async def update_session(self, id_hash: bytes, **values: int | None) -> None:
        """Change ``last_seen_at``, ``company_id`` or ``sudo_until`` of one session."""
        unknown = set(values) - {"last_seen_at", "company_id", "sudo_until"}
        if unknown:
            raise ValueError(f"unknown session fields: {sorted(unknown)}")

        def change(conn: Connection) -> None:
            conn.execute(update(t.admin_sessions).where(t.admin_sessions.c.id_hash == id_hash).values(**values))

        await self.backend.write(change)

    async def end_session(self, id_hash: bytes) -> None:
        def change(conn: Connection) -> None:
            conn.execute(delete(t.admin_sessions).where(t.admin_sessions.c.id_hash == id_hash))

        await self.backend.write(change)

    # -- audit trail ---------------------------------------------------------------------

    async def record(self, *events: AuditEvent) -> None:
        """Append events to the audit trail, in a transaction of their own."""
        if events:
            await self.backend.write(lambda conn: write_audit(conn, events))

    async def audit_events(self, company_id: int, *, before_id: int | None = None, limit: int = 50) -> list[AuditEvent]:
        """A company's audit trail, newest first, keyset-paginated by id."""

        def query(conn: Connection) -> list[AuditEvent]:
            a = t.audit_events.c
            where = [a.company_id == company_id]
            if before_id is not None:
                where.append(a.id < before_id)
            rows = conn.execute(select(t.audit_events).where(*where).order_by(a.id.desc()).limit(limit)).all()
            return [
                AuditEvent(
                    id=r.id,
                    company_id=r.company_id,
                    admin_id=r.admin_id,
                    actor=r.actor,
                    at=r.at,
                    action=r.action,
                    detail=r.detail,
                    ip=r.ip,
                    user_agent=r.user_agent,
                )
                for r in rows
            ]

        return list(await self.backend.read(query))


def write_audit(conn: Connection, events: Sequence[AuditEvent]) -> None:
    """Append events to the audit trail, in the caller's transaction (the change they record)."""
    rows = [
        {
            "company_id": e.company_id,
            "admin_id": e.admin_id,
            "actor": e.actor[:254],
            "at": e.at,
            "action": e.action,
            "detail": e.detail,
            "ip": e.ip[:45],
            "user_agent": e.user_agent[:300],
        }
        for e in events
    ]
    if rows:
        conn.execute(insert(t.audit_events), rows)


# -- roles and invitations, as functions of the caller's transaction (services/admins.py) -----------


def insert_admin(
    conn: Connection, email: str, password_hash: str, *, must_change_password: bool, now: int
) -> int | None:
    """A new admin; None if one with that email exists (or is being made by a concurrent transaction)."""
    values = {
        "email": email,
        "password_hash": password_hash,
        "created_at": now,
        "password_changed_at": now,
        "must_change_password": must_change_password,
    }
    check_row(t.admins, values)
    admin_id = conn.execute(insert_or_nothing(conn, t.admins, values).returning(t.admins.c.id)).scalar()
    return None if admin_id is None else int(admin_id)


def add_membership(conn: Connection, admin_id: int, company_id: int, role: str) -> bool:
    """The admin administers the company in ``role``; False if they already did (their role unchanged)."""
    values = {"admin_id": admin_id, "company_id": company_id, "role": role}
    statement = insert_or_nothing(conn, t.admin_memberships, values).returning(t.admin_memberships.c.admin_id)
    return conn.execute(statement).first() is not None


def members(conn: Connection, company_id: int) -> list[Member]:
    """The admins of one company with their roles, by email."""
    m, a = t.admin_memberships.c, t.admins.c
    rows = conn.execute(
        select(t.admins, m.role)
        .join_from(t.admins, t.admin_memberships, m.admin_id == a.id)
        .where(m.company_id == company_id)
        .order_by(a.email)
    ).all()
    return [Member(_admin(r), r.role) for r in rows]


def role_of(conn: Connection, company_id: int, admin_id: int) -> str | None:
    m = t.admin_memberships.c
    role = conn.execute(select(m.role).where(m.company_id == company_id, m.admin_id == admin_id)).scalar()
    return None if role is None else str(role)


def count_owners(conn: Connection, company_id: int) -> int:
    m = t.admin_memberships.c
    rows = conn.execute(select(m.admin_id).where(m.company_id == company_id, m.role == "owner")).all()
    return len(rows)


def set_role(conn: Connection, company_id: int, admin_id: int, role: str) -> None:
    m = t.admin_memberships.c
    conn.execute(
        update(t.admin_memberships).where(m.company_id == company_id, m.admin_id == admin_id).values(role=role)
    )


def remove_membership(conn: Connection, company_id: int, admin_id: int) -> None:
    """The admin no longer administers the company; their sessions on it move to none at their next request."""
    m = t.admin_memberships.c
    conn.execute(delete(t.admin_memberships).where(m.company_id == company_id, m.admin_id == admin_id))


def _invitation(row: Row[Any]) -> Invitation:
    return Invitation(
        id=row.id,
        company_id=row.company_id,
        email=row.email,
        role=row.role,
        invited_by=row.invited_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        accepted_at=row.accepted_at,
        accepted_by=row.accepted_by,
        company_name=getattr(row, "company_name", ""),
    )


def insert_invitation(
    conn: Connection,
    company_id: int,
    *,
    email: str,
    role: str,
    token_hash: bytes,
    invited_by: str,
    now: int,
    expires_at: int,
) -> Invitation:
    values = {
        "company_id": company_id,
        "email": email,
        "role": role,
        "token_hash": token_hash,
        "invited_by": invited_by[:254],
        "created_at": now,
        "expires_at": expires_at,
    }
    check_row(t.admin_invitations, values)
    row = conn.execute(insert(t.admin_invitations).values(**values).returning(t.admin_invitations)).one()
    return _invitation(row)


def invitation_by_hash(conn: Connection, token_hash: bytes) -> Invitation | None:
    i, c = t.admin_invitations.c, t.companies.c
    row = conn.execute(
        select(t.admin_invitations, c.name.label("company_name"))
        .join_from(t.admin_invitations, t.companies, c.id == i.company_id)
        .where(i.token_hash == token_hash)
    ).first()
    return None if row is None else _invitation(row)


def pending_invitations(conn: Connection, company_id: int, now: int) -> list[Invitation]:
    """The company's invitations not yet accepted nor expired, newest first."""
    i = t.admin_invitations.c
    rows = conn.execute(
        select(t.admin_invitations)
        .where(i.company_id == company_id, i.accepted_at.is_(None), i.expires_at > now)
        .order_by(i.id.desc())
    ).all()
    return [_invitation(r) for r in rows]


def use_invitation(conn: Connection, invitation_id: int, now: int) -> bool:
    """Mark the invitation used, if it is still unused and unexpired: one conditional UPDATE.

    On PostgreSQL a concurrent acceptance waits on the row, then finds it used: only one goes through.
    """
    i = t.admin_invitations.c
    used = conn.execute(
        update(t.admin_invitations)
        .where(i.id == invitation_id, i.accepted_at.is_(None), i.expires_at > now)
        .values(accepted_at=now)
        .returning(i.id)
    ).first()
    return used is not None


def invitation_accepted_by(conn: Connection, invitation_id: int, admin_id: int) -> None:
    i = t.admin_invitations.c
    conn.execute(update(t.admin_invitations).where(i.id == invitation_id).values(accepted_by=admin_id))
