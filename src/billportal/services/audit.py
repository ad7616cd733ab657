"""The admin audit trail: who revealed, rotated or revoked a key, changed the policy, made an API key or signed in.

Entries name the actor (an admin's email, or "cli" for an operator), the time,
and where the request came from. They never hold a key, a password or a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection

from billportal.storage.admins import write_audit
from billportal.storage.records import AuditEvent
from billportal.storage.store import Store


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: a signed-in admin (and from where), or an operator at the CLI."""

    name: str
    admin_id: int | None = None
    ip: str = ""
    user_agent: str = ""


CLI: Final = Actor("cli")

# action -> how the audit trail page names it.
ACTIONS: Final[dict[str, str]] = {
    "admin.created": "Admin added",
    "admin.signed_in": "Signed in",
    "admin.sign_in_failed": "Sign-in failed (wrong password)",
    "admin.password_changed": "Password changed",
    "admin.role_changed": "Admin's role changed",
    "admin.removed": "Admin removed",
    "admin.invited": "Admin invited",
    "admin.invitation_accepted": "Invitation accepted",
    "sso.enabled": "Single sign-on turned on",
    "sso.disabled": "Single sign-on turned off",
    "sso.key_revealed": "SSO key revealed",
    "sso.key_rotated": "SSO key rotated",
    "sso.key_revoked": "SSO key revoked",
    "sso.policy_changed": "Sign-in policy changed",
    "sso.email_sign_in_on": "Email sign-in turned on",
    "sso.email_sign_in_off": "Email sign-in turned off",
    "sso.links_cut_off": "Links issued before now rejected",
    "sso.cutoff_removed": "Link cutoff removed",
    "sso.customer_signed_out": "Customer signed out everywhere",
    "sso.customers_signed_out": "Every customer signed out",
    "sso.test_link": "Test sign-in link made",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
    "company.updated": "Company settings changed",
    "payments.configured": "Online payment settings changed",
    "payment.refunded": "Payment refunded",
    "payment.recorded": "Payment recorded",
    "document.created": "Document created",
    "document.changed": "Document changed",
    "document.issued": "Document issued",
    "document.voided": "Document voided",
    "document.deleted": "Document deleted",
    "customer.created": "Customer created",
    "customer.updated": "Customer changed",
    "customer.deleted": "Customer deleted",
    "customer.portal_opened": "Portal opened as a customer",
    "webhooks.endpoint_added": "Webhook endpoint added",
    "webhooks.endpoint_changed": "Webhook endpoint changed",
    "webhooks.secret_rotated": "Webhook signing secret rotated",
    "webhooks.endpoint_removed": "Webhook endpoint removed",
    "webhooks.redelivered": "Webhook events sent again",
    "imports.customers": "Customers imported from a CSV file",
    "imports.invoices": "Invoices imported from a CSV file",
    "imports.contacts": "Contacts imported from a CSV file",
    "mail.settings_changed": "Email settings changed",
    "mail.bounce_cleared": "Bounced email address cleared",
    "contact.added": "Contact added",
    "contact.changed": "Contact changed",
    "contact.removed": "Contact removed",
    "contact.signed_in": "Contact signed in",
    "company.contacts_page": "Customers' Contacts page turned on or off",
}


def action_label(action: str) -> str:
    return ACTIONS.get(action, action)


def entries(
    actor: Actor, action: str, now: int, *, company_ids: Iterable[int | None], detail: str = ""
) -> list[AuditEvent]:
    """One entry per company the action concerns."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    return [
        AuditEvent(
            company_id=company_id,
            admin_id=actor.admin_id,
            actor=actor.name,
            at=now,
            action=action,
            detail=detail,
            ip=actor.ip,
            user_agent=actor.user_agent,
        )
        for company_id in company_ids
    ]


def record_in(
    conn: Connection, actor: Actor, action: str, now: int, *, company_ids: Iterable[int | None], detail: str = ""
) -> None:
    """Record the action in the transaction that makes the change: both are kept, or neither."""
    write_audit(conn, entries(actor, action, now, company_ids=company_ids, detail=detail))


async def record(
    store: Store, actor: Actor, action: str, now: int, *, company_ids: Iterable[int | None], detail: str = ""
) -> None:
    """Record an action that changed nothing else (a sign-in, a key revealed), in a transaction of its own."""
    await store.admins.record(*entries(actor, action, now, company_ids=company_ids, detail=detail))
