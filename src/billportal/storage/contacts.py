"""A customer's contacts: the queries, as functions of a connection."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, delete, func, select, update

from billportal.storage import schema as t
from billportal.storage.bounds import check_row, fits
from billportal.storage.dialect import insert_or_nothing
from billportal.storage.records import Contact

MAX_CONTACTS: Final = 50  # per customer
MAX_MEMBERSHIPS: Final = 20  # accounts one address may pick between, at most


def _record(row: Any) -> Contact:
    return Contact(
        id=row.id,
        company_id=row.company_id,
        customer_id=row.customer_id,
        name=row.name,
        email=row.email,
        role=row.role,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def of_customer(conn: Connection, company_id: int, customer_id: int) -> list[Contact]:
    c = t.contacts.c
    query = select(t.contacts).where(c.company_id == company_id, c.customer_id == customer_id).order_by(c.id)
    return [_record(row) for row in conn.execute(query.limit(MAX_CONTACTS))]


def count(conn: Connection, company_id: int, customer_id: int) -> int:
    c = t.contacts.c
    query = select(func.count()).where(c.company_id == company_id, c.customer_id == customer_id)
    return int(conn.execute(query).scalar_one())


def get(conn: Connection, company_id: int, customer_id: int, contact_id: int) -> Contact | None:
    c = t.contacts.c
    if not fits(c.id, contact_id):
        return None
    query = select(t.contacts).where(c.company_id == company_id, c.customer_id == customer_id, c.id == contact_id)
    row = conn.execute(query).first()
    return None if row is None else _record(row)


def by_id(conn: Connection, company_id: int, contact_id: int) -> Contact | None:
    c = t.contacts.c
    if not fits(c.id, contact_id):
        return None
    row = conn.execute(select(t.contacts).where(c.company_id == company_id, c.id == contact_id)).first()
    return None if row is None else _record(row)


def by_ids(conn: Connection, company_id: int, contact_ids: list[int]) -> list[Contact]:
    c = t.contacts.c
    query = select(t.contacts).where(c.company_id == company_id, c.id.in_(contact_ids[:200]))
    return [_record(row) for row in conn.execute(query)]


def by_email(conn: Connection, company_id: int, email: str) -> list[Contact]:
    """The company's contacts whose address is ``email`` (lower case), at any of its customers."""
    c = t.contacts.c
    query = select(t.contacts).where(c.company_id == company_id, c.email == email).order_by(c.customer_id, c.id)
    return [_record(row) for row in conn.execute(query.limit(MAX_MEMBERSHIPS))]


def by_keys(conn: Connection, company_id: int, keys: list[tuple[int, str]]) -> dict[tuple[int, str], Contact]:
    """The company's contacts among ``(customer id, email)`` pairs (an import's batch), by pair.

    Read by customer (at most MAX_CONTACTS each) and matched here: two IN lists on the unique index
    would have SQLite probe every customer with every address.
    """
    c = t.contacts.c
    wanted = {(customer_id, email) for customer_id, email in keys if fits(c.customer_id, customer_id)}
    customer_ids = sorted({customer_id for customer_id, _ in wanted})
    found: dict[tuple[int, str], Contact] = {}
    for start in range(0, len(customer_ids), 500):
        query = select(t.contacts).where(
            c.company_id == company_id, c.customer_id.in_(customer_ids[start : start + 500])
        )
        for row in conn.execute(query):
            if (row.customer_id, row.email) in wanted:
                found[(row.customer_id, row.email)] = _record(row)
    return found


def email_taken(conn: Connection, company_id: int, customer_id: int, email: str, but: int | None = None) -> bool:
    c = t.contacts.c
    query = select(c.id).where(c.company_id == company_id, c.customer_id == customer_id, c.email == email)
    if but is not None:
        query = query.where(c.id != but)
    return conn.execute(query.limit(1)).first() is not None


def insert_contact(conn: Connection, values: dict[str, Any]) -> int | None:
    """Insert a contact; None if the customer has one at that address already (even one added just now)."""
    check_row(t.contacts, values)
    statement = insert_or_nothing(conn, t.contacts, values, ["company_id", "customer_id", "email"])
    found = conn.execute(statement.returning(t.contacts.c.id)).scalar_one_or_none()
    return None if found is None else int(found)


def update_contact(conn: Connection, company_id: int, contact_id: int, values: dict[str, Any]) -> bool:
    check_row(t.contacts, values)
    c = t.contacts.c
    changed = conn.execute(update(t.contacts).where(c.company_id == company_id, c.id == contact_id).values(**values))
    return int(changed.rowcount) == 1


def delete_contact(conn: Connection, company_id: int, contact_id: int) -> bool:
    c = t.contacts.c
    gone = conn.execute(delete(t.contacts).where(c.company_id == company_id, c.id == contact_id))
    return int(gone.rowcount) == 1


def end_sessions(conn: Connection, company_id: int, contact_id: int) -> list[bytes]:
    """End the contact's sessions (a removed contact, or one whose role changed); their id hashes."""
    s = t.sessions.c
    where = (s.company_id == company_id, s.contact_id == contact_id)
    hashes = [bytes(row) for row in conn.execute(select(s.id_hash).where(*where)).scalars()]
    conn.execute(delete(t.sessions).where(*where))
    return hashes


def switch_session(conn: Connection, id_hash: bytes, customer_id: int, contact_id: int | None) -> bool:
    """Point a session at another of its address's accounts."""
    s = t.sessions.c
    changed = conn.execute(
        update(t.sessions).where(s.id_hash == id_hash).values(customer_id=customer_id, contact_id=contact_id)
    )
    return int(changed.rowcount) == 1


def customer_exists(conn: Connection, company_id: int, customer_id: int) -> bool:
    c = t.customers.c
    if not fits(c.id, customer_id):
        return False
    return conn.execute(select(c.id).where(c.company_id == company_id, c.id == customer_id)).first() is not None


def customer_names(conn: Connection, company_id: int, customer_ids: list[int]) -> dict[int, str]:
    c = t.customers.c
    query = select(c.id, c.name).where(c.company_id == company_id, c.id.in_(customer_ids))
    return {int(row.id): str(row.name) for row in conn.execute(query)}


def customers_by_email(conn: Connection, company_id: int, email: str) -> list[int]:
    """The company's customers whose own address is ``email`` (lower case)."""
    c = t.customers.c
    query = select(c.id).where(c.company_id == company_id, func.lower(c.email) == email).order_by(c.id)
    return [int(row) for row in conn.execute(query.limit(MAX_MEMBERSHIPS)).scalars()]
