"""A customer's contacts: people at the business with their own name, email and role.

The company manages them (dashboard, API), and so may the customer on the portal's Contacts page when
the company allows it. A contact signs in by email (services/email_links.py) as that contact of that
customer; an address that belongs to several of the company's customers picks one after signing in,
and may switch between them (:func:`memberships`). Each portal route declares the permission it needs
(portal/views.py ``needs=``); :func:`allows` answers it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection

from billportal.core.errors import NotFound, Refused
from billportal.core.i18n import N_
from billportal.services import audit
from billportal.services.audit import Actor
from billportal.services.mail import valid_address
from billportal.storage import companies
from billportal.storage import contacts as stored
from billportal.storage.records import Company, Contact
from billportal.storage.store import Store

# role -> what it may do: every contact may view; "pay" pays invoices and answers estimates;
# "manage" also changes billing details, payment methods and (when allowed) the contacts.
ROLES: Final[dict[str, frozenset[str]]] = {
    "view": frozenset({"view"}),
    "pay": frozenset({"view", "pay"}),
    "manage": frozenset({"view", "pay", "manage"}),
}
ROLE_NAMES: Final = {"view": N_("View only"), "pay": N_("Pay"), "manage": N_("Manage billing")}
PERMISSIONS: Final = ("view", "pay", "manage")
MAX_NAME: Final = 200

# The rules' messages: the API and the dashboard say them as they are, the portal in the customer's language
# (marked here, translated where they are shown; tests/unit/services/test_contacts.py keeps the numbers true).
NAME_RULE: Final = N_("name must be 1 to 200 characters of text")
EMAIL_RULE: Final = N_("email must be an email address")
ROLE_RULE: Final = N_("role must be one of view, pay, manage")
EXISTS: Final = N_("This customer already has a contact with that email.")
TOO_MANY: Final = N_("A customer has at most 50 contacts.")


def allows(role: str | None, needs: str) -> bool:
    """Whether a sign-in with ``role`` (None: the customer themself, who may do everything) may do ``needs``."""
    return role is None or needs in ROLES.get(role, frozenset())


@dataclass(frozen=True, slots=True)
class Membership:
    """One account an address may sign in to: a customer, as themself (no contact) or as one of its contacts."""

    customer_id: int
    customer_name: str
    contact_id: int | None
    role: str | None  # None: the customer's own address

    @property
    def key(self) -> str:
        """How the account picker names it in a form."""
        return f"{self.customer_id}:{self.contact_id or 0}"


def _unsafe(value: str) -> bool:
    """A control character (the API's schema refuses the same ones), or one that cannot be stored."""
    return any(ord(char) < 0x20 or ord(char) == 0x7F or unicodedata.category(char) == "Cs" for char in value)


def address(value: str) -> str:
    """An email address as contacts store and compare it: space trimmed, lower case (not checked)."""
    return " ".join(value.split()).lower()


def clean(values: Mapping[str, Any], *, partial: bool = False) -> dict[str, str]:
    """A contact's fields, checked: ``name``, ``email`` and ``role`` (all three, unless ``partial``)."""
    cleaned: dict[str, str] = {}
    for name in ("name", "email", "role"):
        if name not in values:
            if partial:
                continue
            raise Refused("missing_field", f"{name} is required", name)
        value = values[name]
        if not isinstance(value, str):
            raise Refused("invalid_field", f"{name} must be a string", name)
        value = address(value) if name == "email" else " ".join(value.split())
        if name == "name" and (not value or len(value) > MAX_NAME or _unsafe(value)):
            raise Refused("invalid_field", NAME_RULE, name)
        if name == "email" and not valid_address(value):
            raise Refused("invalid_field", EMAIL_RULE, name)
        if name == "role" and value not in ROLES:
            raise Refused("invalid_field", ROLE_RULE, name)
        cleaned[name] = value
    return cleaned


def _detail(contact: Contact | Mapping[str, str], customer_id: int) -> str:
    name, email, role = (
        (contact["name"], contact["email"], contact["role"])
        if isinstance(contact, Mapping)
        else (contact.name, contact.email, contact.role)
    )
    return f"customer {customer_id}: {name} <{email}>, {ROLE_NAMES.get(role, role)}"


def add_in(
    conn: Connection, company: Company, customer_id: int, values: Mapping[str, Any], *, actor: Actor, now: int
) -> Contact:
    """Add a contact to the customer, in the caller's transaction (Refused when a rule is broken)."""
    if not stored.customer_exists(conn, company.id, customer_id):
        raise NotFound("No such customer.", "customer")
    fields = clean(values)
    if stored.count(conn, company.id, customer_id) >= stored.MAX_CONTACTS:
        raise Refused("too_many_contacts", TOO_MANY, "email")
    row = {**fields, "company_id": company.id, "customer_id": customer_id, "created_at": now, "updated_at": now}
    contact_id = stored.insert_contact(conn, row)
    if contact_id is None:
        raise Refused("contact_exists", EXISTS, "email")
    audit.record_in(conn, actor, "contact.added", now, company_ids=[company.id], detail=_detail(fields, customer_id))
    found = stored.get(conn, company.id, customer_id, contact_id)
    assert found is not None
    return found


def update_in(
    conn: Connection,
    company: Company,
    customer_id: int,
    contact_id: int,
    values: Mapping[str, Any],
    *,
    actor: Actor,
    now: int,
) -> tuple[Contact, list[bytes]]:
    """Change a contact; the contact and the sessions ended (a new email or role signs the contact out)."""
    old = stored.get(conn, company.id, customer_id, contact_id)
    if old is None:
        raise NotFound("No such contact.", "contact")
    fields = clean(values, partial=True)
    if fields.get("email", old.email) != old.email and stored.email_taken(
        conn, company.id, customer_id, fields["email"], but=contact_id
    ):
        raise Refused("contact_exists", EXISTS, "email")
    stored.update_contact(conn, company.id, contact_id, {**fields, "updated_at": now})
    new = stored.get(conn, company.id, customer_id, contact_id)
    assert new is not None
    ended: list[bytes] = []
    if (new.email, new.role) != (old.email, old.role):
        ended = stored.end_sessions(conn, company.id, contact_id)
    audit.record_in(conn, actor, "contact.changed", now, company_ids=[company.id], detail=_detail(new, customer_id))
    return new, ended


def remove_in(
    conn: Connection, company: Company, customer_id: int, contact_id: int, *, actor: Actor, now: int
) -> list[bytes]:
    """Remove a contact and end their sessions; the sessions' id hashes."""
    old = stored.get(conn, company.id, customer_id, contact_id)
    if old is None:
        raise NotFound("No such contact.", "contact")
    stored.delete_contact(conn, company.id, contact_id)
    ended = stored.end_sessions(conn, company.id, contact_id)
    audit.record_in(conn, actor, "contact.removed", now, company_ids=[company.id], detail=_detail(old, customer_id))
    return ended


async def forget_sessions(store: Store, ended: list[bytes]) -> None:
    """Drop ended sessions' Redis copies, so that no process serves them again."""
    if store.session_cache is not None:
        for id_hash in ended:
            await store.session_cache.drop(id_hash)


async def add(
    store: Store, company: Company, customer_id: int, values: Mapping[str, Any], *, actor: Actor, now: int
) -> Contact:
    contact: Contact = await store.write(lambda conn: add_in(conn, company, customer_id, values, actor=actor, now=now))
    return contact


async def update(
    store: Store,
    company: Company,
    customer_id: int,
    contact_id: int,
    values: Mapping[str, Any],
    *,
    actor: Actor,
    now: int,
) -> Contact:
    contact, ended = await store.write(
        lambda conn: update_in(conn, company, customer_id, contact_id, values, actor=actor, now=now)
    )
    await forget_sessions(store, ended)
    return contact


async def remove(store: Store, company: Company, customer_id: int, contact_id: int, *, actor: Actor, now: int) -> None:
    ended = await store.write(lambda conn: remove_in(conn, company, customer_id, contact_id, actor=actor, now=now))
    await forget_sessions(store, ended)


async def of_customer(store: Store, company_id: int, customer_id: int) -> list[Contact]:
    return await store.read(lambda conn: stored.of_customer(conn, company_id, customer_id))


async def get(store: Store, company_id: int, customer_id: int, contact_id: int) -> Contact | None:
    return await store.read(lambda conn: stored.get(conn, company_id, customer_id, contact_id))


async def find(store: Store, company_id: int, contact_id: int) -> Contact | None:
    """A contact of any of the company's customers, by id."""
    return await store.read(lambda conn: stored.by_id(conn, company_id, contact_id))


async def names(store: Store, company_id: int, contact_ids: list[int]) -> dict[int, str]:
    """Contacts by id, as the sign-in log names them: "Name <email>"."""
    found = await store.read(lambda conn: stored.by_ids(conn, company_id, contact_ids))
    return {contact.id: f"{contact.name} <{contact.email}>" for contact in found}


def memberships_in(conn: Connection, company_id: int, email: str) -> list[Membership]:
    """Every account of the company that ``email`` (lower case) signs in to: its customers', then its contacts'."""
    if not email:
        return []
    own = stored.customers_by_email(conn, company_id, email)
    people = stored.by_email(conn, company_id, email)
    names = stored.customer_names(conn, company_id, [*own, *(contact.customer_id for contact in people)])
    found = [Membership(customer_id, names.get(customer_id, ""), None, None) for customer_id in own]
    found += [
        Membership(contact.customer_id, names.get(contact.customer_id, ""), contact.id, contact.role)
        for contact in people
        if contact.customer_id in names
    ]
    return found[: stored.MAX_MEMBERSHIPS]


async def memberships(store: Store, company_id: int, email: str) -> list[Membership]:
    """The accounts ``email`` signs in to; a session without an address (SSO) has none, and costs no read."""
    if not email:
        return []
    return await store.read(lambda conn: memberships_in(conn, company_id, email))


async def switch(store: Store, company_id: int, id_hash: bytes, email: str, key: str) -> Membership | None:
    """Point the session at another account of its address; None (nothing changed) if it is not one of them."""

    def change(conn: Connection) -> Membership | None:
        chosen = next((m for m in memberships_in(conn, company_id, email) if m.key == key), None)
        if chosen is None or not stored.switch_session(conn, id_hash, chosen.customer_id, chosen.contact_id):
            return None
        return chosen

    chosen: Membership | None = await store.write(change)
    await forget_sessions(store, [id_hash])
    return chosen


async def set_contacts_page(store: Store, company: Company, enabled: bool, *, actor: Actor, now: int) -> bool:
    """Let the company's customers manage their own contacts in the portal, or not; False if it already was so."""
    if company.contacts_page == enabled:
        return False

    def change(conn: Connection) -> None:
        companies.update_settings(conn, company.id, company.username, {"contacts_page": enabled, "updated_at": now})
        detail = "on" if enabled else "off"
        audit.record_in(conn, actor, "company.contacts_page", now, company_ids=[company.id], detail=detail)

    await store.write(change)
    return True


def contact_actor(contact: Contact, *, ip: str = "", user_agent: str = "") -> Actor:
    """A contact who changes something in the portal, as the audit trail names them."""
    return Actor(f"contact {contact.name} <{contact.email}>"[:254], ip=ip, user_agent=user_agent)
