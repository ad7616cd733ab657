"""Queries for online payments: a company's payment settings, saved payment methods, attempts, gateway events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from billportal.storage import schema as t
from billportal.storage.bounds import check_row, fits
from billportal.storage.dialect import insert_or_nothing
from billportal.storage.records import PaymentAttempt, PaymentSettings, SavedPaymentMethod


def _record(cls: Any, row: Row[Any]) -> Any:
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})


# -- settings


def settings(conn: Connection, company_id: int) -> PaymentSettings:
    """The company's payment settings (the defaults, gateway "none", if it never set any)."""
    row = conn.execute(select(t.payment_settings).where(t.payment_settings.c.company_id == company_id)).first()
    if row is None:
        return PaymentSettings(company_id, "none", False, False, True, False, "1,3,7", "", "", "", "", 0)
    found: PaymentSettings = _record(PaymentSettings, row)
    return found


def save_settings(conn: Connection, company_id: int, values: Mapping[str, Any], *, now: int) -> None:
    """Change some of the company's payment settings (its row is made on the first change)."""
    check_row(t.payment_settings, values)
    c = t.payment_settings.c
    conn.execute(insert_or_nothing(conn, t.payment_settings, {"company_id": company_id, "updated_at": now}))
    conn.execute(update(t.payment_settings).where(c.company_id == company_id).values({**values, "updated_at": now}))


# -- saved payment methods


def methods(conn: Connection, company_id: int, customer_id: int) -> list[SavedPaymentMethod]:
    """The customer's saved methods, the default first, then the newest."""
    c = t.payment_methods.c
    rows = conn.execute(
        select(t.payment_methods)
        .where(c.company_id == company_id, c.customer_id == customer_id)
        .order_by(c.is_default.desc(), c.id.desc())
    )
    return [_record(SavedPaymentMethod, row) for row in rows]


def method(conn: Connection, company_id: int, customer_id: int, method_id: int) -> SavedPaymentMethod | None:
    c = t.payment_methods.c
    if not fits(c.id, method_id):
        return None
    row = conn.execute(
        select(t.payment_methods).where(c.id == method_id, c.company_id == company_id, c.customer_id == customer_id)
    ).first()
    return None if row is None else _record(SavedPaymentMethod, row)


def add_method(conn: Connection, values: Mapping[str, Any]) -> int:
    check_row(t.payment_methods, values)
    return int(conn.execute(t.payment_methods.insert().values(**values).returning(t.payment_methods.c.id)).scalar_one())


def make_default(conn: Connection, company_id: int, customer_id: int, method_id: int) -> bool:
    """Make one saved method the customer's default (False: it is not theirs)."""
    c = t.payment_methods.c
    mine = (c.company_id == company_id, c.customer_id == customer_id)
    if method(conn, company_id, customer_id, method_id) is None:
        return False
    conn.execute(update(t.payment_methods).where(*mine).values(is_default=c.id == method_id))
    return True


def remove_method(conn: Connection, company_id: int, customer_id: int, method_id: int) -> SavedPaymentMethod | None:
    """Forget a saved method; if it was the default, the newest left becomes the default."""
    found = method(conn, company_id, customer_id, method_id)
    if found is None:
        return None
    c = t.payment_methods.c
    conn.execute(delete(t.payment_methods).where(c.id == method_id))
    if found.is_default:
        left = methods(conn, company_id, customer_id)
        if left:
            conn.execute(update(t.payment_methods).where(c.id == left[0].id).values(is_default=True))
    return found


# -- gateway customers


def gateway_customer(conn: Connection, company_id: int, customer_id: int, gateway: str) -> str | None:
    """The gateway's customer id kept for this customer of the company (None: none made yet)."""
    c = t.gateway_customers.c
    found = conn.execute(
        select(c.gateway_customer_id).where(
            c.company_id == company_id, c.customer_id == customer_id, c.gateway == gateway
        )
    ).scalar()
    return None if found is None else str(found)


def keep_gateway_customer(conn: Connection, values: Mapping[str, Any]) -> str:
    """Keep a new gateway customer id, unless another request kept one first: the id kept, either way."""
    check_row(t.gateway_customers, values)
    key = ("company_id", "customer_id", "gateway")
    conn.execute(insert_or_nothing(conn, t.gateway_customers, values, key))
    found = gateway_customer(conn, values["company_id"], values["customer_id"], values["gateway"])
    assert found is not None
    return found


# -- attempts


def claim_attempt(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Insert the attempt under its token (False: the token was used already, by this form or another)."""
    check_row(t.payment_attempts, values)
    c = t.payment_attempts.c
    statement = insert_or_nothing(conn, t.payment_attempts, values, ("company_id", "token")).returning(c.id)
    return conn.execute(statement).first() is not None


def attempt(conn: Connection, company_id: int, token: str, *, lock: bool = False) -> PaymentAttempt | None:
    c = t.payment_attempts.c
    query = select(t.payment_attempts).where(c.company_id == company_id, c.token == token)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _record(PaymentAttempt, row)


def update_attempt(conn: Connection, attempt_id: int, values: Mapping[str, Any]) -> None:
    check_row(t.payment_attempts, values)
    conn.execute(update(t.payment_attempts).where(t.payment_attempts.c.id == attempt_id).values(**values))


# -- gateway events


def mark_event(conn: Connection, company_id: int, event_id: str, kind: str, *, now: int) -> bool:
    """Note a gateway event as processed (False: it was already, by this process or another)."""
    values = {"company_id": company_id, "event_id": event_id, "kind": kind, "received_at": now}
    check_row(t.gateway_events, values)
    statement = insert_or_nothing(conn, t.gateway_events, values, ("company_id", "event_id"))
    return bool(conn.execute(statement.returning(t.gateway_events.c.event_id)).first() is not None)


# -- sealed secrets, for master key rotation

SEALED_COLUMNS = ("secret_key_sealed", "webhook_secret_sealed")


def sealed_secrets(conn: Connection) -> list[tuple[int, str, str]]:
    """Every stored gateway secret of every company: (company id, column, sealed text)."""
    c = t.payment_settings.c
    rows = conn.execute(select(c.company_id, *(c[name] for name in SEALED_COLUMNS)).order_by(c.company_id)).all()
    return [(row.company_id, name, row._mapping[name]) for row in rows for name in SEALED_COLUMNS if row._mapping[name]]


def reseal_secret(conn: Connection, company_id: int, column: str, old: str, new: str) -> None:
    c = t.payment_settings.c
    conn.execute(update(t.payment_settings).where(c.company_id == company_id, c[column] == old).values({column: new}))


# -- AutoPay

AUTOPAY_PREFIX = "autopay-"  # an AutoPay charge's attempt token: autopay-{invoice id}-{try}


def autopay_enrolled(conn: Connection, company_id: int, customer_id: int) -> bool:
    c = t.autopay_enrollments.c
    found = conn.execute(select(c.enrolled_at).where(c.company_id == company_id, c.customer_id == customer_id))
    return found.first() is not None


def set_autopay(conn: Connection, company_id: int, customer_id: int, *, on: bool, now: int) -> None:
    c = t.autopay_enrollments.c
    if on:
        values = {"company_id": company_id, "customer_id": customer_id, "enrolled_at": now}
        conn.execute(insert_or_nothing(conn, t.autopay_enrollments, values, ("company_id", "customer_id")))
    else:
        conn.execute(delete(t.autopay_enrollments).where(c.company_id == company_id, c.customer_id == customer_id))


def autopay_customers(conn: Connection, company_id: int) -> list[int]:
    c = t.autopay_enrollments.c
    return list(conn.execute(select(c.customer_id).where(c.company_id == company_id).order_by(c.customer_id)).scalars())


def autopay_attempts(conn: Connection, company_id: int, customer_id: int) -> list[PaymentAttempt]:
    """The customer's AutoPay charges, oldest first."""
    c = t.payment_attempts.c
    rows = conn.execute(
        select(t.payment_attempts)
        .where(c.company_id == company_id, c.customer_id == customer_id, c.token.startswith(AUTOPAY_PREFIX))
        .order_by(c.id)
    )
    return [_record(PaymentAttempt, row) for row in rows]


def autopay_companies(conn: Connection) -> list[int]:
    """Companies that allow AutoPay and take payments online."""
    c = t.payment_settings.c
    query = select(c.company_id).where(c.allow_autopay.is_(True), c.gateway != "none").order_by(c.company_id)
    return list(conn.execute(query).scalars())


def company_username(conn: Connection, company_id: int) -> str | None:
    found = conn.execute(select(t.companies.c.username).where(t.companies.c.id == company_id)).scalar()
    return None if found is None else str(found)
