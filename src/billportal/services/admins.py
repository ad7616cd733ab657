"""A company's admins and their roles: role changes, removal, invitations by email, the last-owner rule.

Each admin holds one role per company they administer (``ROLES``); the dashboard
decides which areas a role opens (``web.guards.ROLE_AREAS``). A company always
keeps an owner: the last one can be neither demoted nor removed. The owners' count
is read with the company's row locked, so two owners demoting each other at once
leave one owner. An invitation's token is shown (or mailed) once and stored as its
SHA-256; accepting it is one conditional UPDATE, so however often and however
concurrently it is accepted, one membership is made.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection

from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.services import audit, mail
from billportal.services.audit import Actor
from billportal.storage import admins as rows
from billportal.storage import companies
from billportal.storage import mail as mail_queue
from billportal.storage.records import Company, Invitation, Member
from billportal.storage.store import Store

ROLES: Final[dict[str, str]] = {
    "owner": N_("Owner"),
    "admin": N_("Admin"),
    "developer": N_("Developer"),
    "billing": N_("Billing"),
    "read_only": N_("Read-only"),
}
ROLE_HINTS: Final[dict[str, str]] = {
    "owner": N_("Everything, the admins and their roles included."),
    "admin": N_("Everything but the admins and their roles."),
    "developer": N_("SSO keys, API keys, webhooks and the sign-in log."),
    "billing": N_("Customers, documents and payments."),
    "read_only": N_("Reads everything but the admins; changes nothing."),
}
INVITATION_SECONDS: Final = 72 * 60 * 60
TOKEN_PREFIX: Final = "bp_inv_"  # noqa: S105 - a prefix, not a secret
_MAX_TOKEN_LENGTH: Final = 100


@dataclass(frozen=True, slots=True)
class NewInvitation:
    """An invitation just made, and its token: in this answer only, never stored."""

    token: str
    invitation: Invitation
    mailed: bool = False  # emailed to the invited address (else the inviter passes the link on)


def role_label(role: str) -> str:
    return ROLES.get(role, role)


def role_problem(role: str) -> str | None:
    if role not in ROLES:
        return "Choose a role from the list."
    return None


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _check_role(role: str) -> None:
    problem = role_problem(role)
    if problem:
        raise Refused("invalid_role", problem, "role")


def _locked_role(conn: Connection, company_id: int, admin_id: int) -> str:
    """The admin's role, read with the company's row locked (owners are counted after it); Refused if none."""
    companies.lock(conn, company_id)
    role = rows.role_of(conn, company_id, admin_id)
    if role is None:
        raise Refused("not_found", "That person is not an admin of this company.")
    return role


def _last_owner(conn: Connection, company_id: int, role: str) -> bool:
    return role == "owner" and rows.count_owners(conn, company_id) <= 1


async def members_of(store: Store, company_id: int) -> list[Member]:
    return await store.read(lambda conn: rows.members(conn, company_id))


async def change_role(store: Store, company: Company, admin_id: int, *, role: str, actor: Actor, now: int) -> bool:
    """Give an admin of the company another role; False if it was theirs already.

    Refused ``last_owner`` for the company's last owner, ``not_found`` for anyone not its admin.
    """
    _check_role(role)

    def change(conn: Connection) -> bool:
        old = _locked_role(conn, company.id, admin_id)
        if old == role:
            return False
        if _last_owner(conn, company.id, old):
            raise Refused("last_owner", "The company's last owner stays an owner: make another admin an owner first.")
        rows.set_role(conn, company.id, admin_id, role)
        email = next((m.admin.email for m in rows.members(conn, company.id) if m.admin.id == admin_id), "")
        detail = f"{email}: role {old} -> {role}"
        audit.record_in(conn, actor, "admin.role_changed", now, company_ids=[company.id], detail=detail)
        return True

    return await store.write(change)


async def remove(store: Store, company: Company, admin_id: int, actor: Actor, now: int) -> str:
    """The admin no longer administers the company (their account stays); answers their email.

    Refused ``last_owner`` for the company's last owner, ``not_found`` for anyone not its admin.
    """

    def change(conn: Connection) -> str:
        old = _locked_role(conn, company.id, admin_id)
        if _last_owner(conn, company.id, old):
            raise Refused(
                "last_owner", "The company's last owner cannot be removed: make another admin an owner first."
            )
        email = next((m.admin.email for m in rows.members(conn, company.id) if m.admin.id == admin_id), "")
        rows.remove_membership(conn, company.id, admin_id)
        detail = f"{email}: role {old} -> removed"
        audit.record_in(conn, actor, "admin.removed", now, company_ids=[company.id], detail=detail)
        return email

    return await store.write(change)


async def invite(
    store: Store,
    company: Company,
    email: str,
    *,
    role: str,
    actor: Actor,
    now: int,
    link: Callable[[str], str] | None = None,
) -> NewInvitation:
    """A single-use invitation for ``email`` (already normalized and checked) to administer the company in ``role``.

    With ``link`` (the accepting page's URL for a token), the invitation is emailed in the same transaction
    (``mailed``). Refused ``already_admin`` if that email administers the company already.
    """
    _check_role(role)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)

    def change(conn: Connection) -> NewInvitation:
        if any(member.admin.email == email for member in rows.members(conn, company.id)):
            raise Refused("already_admin", f"{email} is already an admin of {company.name}.", "email")
        invitation = rows.insert_invitation(
            conn,
            company.id,
            email=email,
            role=role,
            token_hash=hash_token(token),
            invited_by=actor.name,
            now=now,
            expires_at=now + INVITATION_SECONDS,
        )
        detail = f"{email}: invited as {role}, expires in {INVITATION_SECONDS // 3600} h"
        audit.record_in(conn, actor, "admin.invited", now, company_ids=[company.id], detail=detail)
        mailed = link is not None and _mail_invitation(conn, company, invitation, link(token), now)
        return NewInvitation(token, invitation, mailed)

    return await store.write(change)


def _mail_invitation(conn: Connection, company: Company, invitation: Invitation, url: str, now: int) -> bool:
    branding = mail_queue.branding(conn, company.id)
    if branding is None:
        return False
    subject, text, html = mail.render(
        mail.MailKind.ADMIN_INVITATION,
        branding,
        url=url,
        role=role_label(invitation.role),
        invited_by=invitation.invited_by,
        hours=INVITATION_SECONDS // 3600,
    )
    return mail.queue_mail(
        conn,
        company_id=company.id,
        kind=mail.MailKind.ADMIN_INVITATION,
        to=invitation.email,
        subject=subject,
        text=text,
        html=html,
        now=now,
    )


async def pending(store: Store, company_id: int, now: int) -> list[Invitation]:
    return await store.read(lambda conn: rows.pending_invitations(conn, company_id, now))


async def invitation_for(store: Store, token: str, now: int) -> tuple[Invitation | None, str]:
    """The invitation a token opens and ""; or None and why not ("unknown", "used", "expired")."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
        return None, "unknown"
    found = await store.read(lambda conn: rows.invitation_by_hash(conn, hash_token(token)))
    if found is None:
        return None, "unknown"
    if found.accepted_at is not None:
        return None, "used"
    if found.expires_at <= now:
        return None, "expired"
    return found, ""


async def accept(
    store: Store, invitation: Invitation, actor: Actor, now: int, *, admin_id: int | None, password_hash: str | None
) -> int:
    """Use the invitation: the existing admin ``admin_id`` gets the membership, or a new admin with
    ``password_hash`` is made. Answers the admin's id.

    Refused ``invitation_used`` if it was used (or expired) meanwhile: once, whatever resends it.
    """

    def change(conn: Connection) -> int:
        if not rows.use_invitation(conn, invitation.id, now):
            raise Refused("invitation_used", "This invitation has been used already, or has expired.")
        member_id = admin_id
        if member_id is None:
            assert password_hash is not None
            member_id = rows.insert_admin(conn, invitation.email, password_hash, must_change_password=False, now=now)
            if member_id is None:  # made meanwhile (the CLI, another invitation): they accept as that admin
                raise Refused("admin_exists", "An admin with this email exists now: reload the invitation.")
        added = rows.add_membership(conn, member_id, invitation.company_id, invitation.role)
        rows.invitation_accepted_by(conn, invitation.id, member_id)
        detail = f"{invitation.email}: role none -> {invitation.role}" + ("" if added else " (already an admin)")
        who = Actor(invitation.email, member_id, actor.ip, actor.user_agent)
        audit.record_in(conn, who, "admin.invitation_accepted", now, company_ids=[invitation.company_id], detail=detail)
        return member_id

    return await store.write(change)
