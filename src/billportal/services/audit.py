"""The admin audit trail: who revealed, rotated or revoked a key, changed the policy, made an API key or signed in.

Entries name the actor (an admin's email, or "cli" for an operator), the time,
and where the request came from. They never hold a key, a password or a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection

from billportal.core.i18n import N_
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
    "admin.created": N_("Admin added"),
    "admin.signed_in": N_("Signed in"),
    "admin.sign_in_failed": N_("Sign-in failed (wrong password)"),
    "admin.password_changed": N_("Password changed"),
    "admin.role_changed": N_("Admin's role changed"),
    "admin.removed": N_("Admin removed"),
    "admin.invited": N_("Admin invited"),
    "admin.invitation_accepted": N_("Invitation accepted"),
    "sso.enabled": N_("Single sign-on turned on"),
    "sso.disabled": N_("Single sign-on turned off"),
    "sso.key_revealed": N_("SSO key revealed"),
    "sso.key_rotated": N_("SSO key rotated"),
    "sso.key_revoked": N_("SSO key revoked"),
    "sso.policy_changed": N_("Sign-in policy changed"),
    "sso.email_sign_in_on": N_("Email sign-in turned on"),
    "sso.email_sign_in_off": N_("Email sign-in turned off"),
    "sso.links_cut_off": N_("Links issued before now rejected"),
    "sso.cutoff_removed": N_("Link cutoff removed"),
    "sso.customer_signed_out": N_("Customer signed out everywhere"),
    "sso.customers_signed_out": N_("Every customer signed out"),
    "sso.test_link": N_("Test sign-in link made"),
    "api_key.created": N_("API key created"),
    "api_key.revoked": N_("API key revoked"),
    "company.updated": N_("Company settings changed"),
    "payments.configured": N_("Online payment settings changed"),
    "payment.refunded": N_("Payment refunded"),
    "payment.recorded": N_("Payment recorded"),
    "document.created": N_("Document created"),
    "document.changed": N_("Document changed"),
    "document.issued": N_("Document issued"),
    "document.voided": N_("Document voided"),
    "document.deleted": N_("Document deleted"),
    "customer.created": N_("Customer created"),
    "customer.updated": N_("Customer changed"),
    "customer.deleted": N_("Customer deleted"),
    "customer.portal_opened": N_("Portal opened as a customer"),
    "webhooks.endpoint_added": N_("Webhook endpoint added"),
    "webhooks.endpoint_changed": N_("Webhook endpoint changed"),
    "webhooks.secret_rotated": N_("Webhook signing secret rotated"),
    "webhooks.endpoint_removed": N_("Webhook endpoint removed"),
    "webhooks.redelivered": N_("Webhook events sent again"),
    "imports.customers": N_("Customers imported from a CSV file"),
    "imports.invoices": N_("Invoices imported from a CSV file"),
    "imports.contacts": N_("Contacts imported from a CSV file"),
    "mail.settings_changed": N_("Email settings changed"),
    "mail.bounce_cleared": N_("Bounced email address cleared"),
    "contact.added": N_("Contact added"),
    "contact.changed": N_("Contact changed"),
    "contact.removed": N_("Contact removed"),
    "contact.signed_in": N_("Contact signed in"),
    "company.contacts_page": N_("Customers' Contacts page turned on or off"),
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
