"""Queries for refunds: functions of a ``Connection``; only the billing service calls the writing ones.

A refund's rules (never more than the payment, the invoices it takes back from)
are in :class:`billportal.services.billing.Books`, which locks the payment's row
before it reads or writes any of these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import Connection, Row, delete, func, select, update

from billportal.storage import schema as t
from billportal.storage.bounds import check_row, fits
from billportal.storage.dialect import insert_or_nothing
from billportal.storage.prebuilt import Prebuilt, any_of, list_size, listed
from billportal.storage.records import Refund

_FIELDS: Final = tuple(f.name for f in fields(Refund))


def _record(row: Row[Any]) -> Refund:
    mapping = row._mapping
    return Refund(**{name: mapping[name] for name in _FIELDS})


@lru_cache(maxsize=64)
def _of_payments_statement(size: int) -> Prebuilt:
    c = t.refunds.c
    listed = select(*(c[name] for name in _FIELDS)).where(any_of(c.payment_id, size))
    return Prebuilt(listed.order_by(c.payment_id, c.id))


def of_payments(conn: Connection, payment_ids: Sequence[int]) -> dict[int, tuple[Refund, ...]]:
    """Each payment's refunds, oldest first."""
    found: dict[int, list[Refund]] = {i: [] for i in payment_ids}
    if payment_ids:
        for row in _of_payments_statement(list_size(payment_ids)).rows(conn, listed(payment_ids)):
            refund = Refund(*row)
            found[refund.payment_id].append(refund)
    return {i: tuple(refunds) for i, refunds in found.items()}


def get(conn: Connection, company_id: int, refund_id: int, *, lock: bool = False) -> Refund | None:
    c = t.refunds.c
    if not fits(c.id, refund_id):
        return None
    query = select(t.refunds).where(c.company_id == company_id, c.id == refund_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _record(row)


def by_request(conn: Connection, company_id: int, request_key: str) -> Refund | None:
    c = t.refunds.c
    row = conn.execute(select(t.refunds).where(c.company_id == company_id, c.request_key == request_key)).first()
    return None if row is None else _record(row)


def by_gateway_id(conn: Connection, company_id: int, gateway_refund_id: str) -> Refund | None:
    c = t.refunds.c
    row = conn.execute(
        select(t.refunds).where(c.company_id == company_id, c.gateway_refund_id == gateway_refund_id)
    ).first()
    return None if row is None else _record(row)


def pending_total(conn: Connection, payment_id: int) -> int:
    """What refunds still at the gateway hold of a payment."""
    c = t.refunds.c
    query = select(func.coalesce(func.sum(c.amount), 0)).where(c.payment_id == payment_id, c.status == "pending")
    return int(conn.execute(query).scalar_one())


def insert(conn: Connection, values: dict[str, Any]) -> int | None:
    """A new refund; None (nothing written) if its request key was used already."""
    check_row(t.refunds, values)
    statement = insert_or_nothing(conn, t.refunds, values, ("company_id", "request_key")).returning(t.refunds.c.id)
    found = conn.execute(statement).scalar()
    return None if found is None else int(found)


def change(conn: Connection, refund_id: int, values: dict[str, Any]) -> None:
    check_row(t.refunds, values)
    conn.execute(update(t.refunds).where(t.refunds.c.id == refund_id).values(**values))


def take_back(conn: Connection, payment_id: int, invoice_id: int, amount: int) -> None:
    """Take ``amount`` off a payment's application to an invoice (the row goes when nothing is left)."""
    pa = t.payment_applications.c
    mine = (pa.payment_id == payment_id, pa.invoice_id == invoice_id)
    conn.execute(update(t.payment_applications).where(*mine).values(amount=pa.amount - amount))
    conn.execute(delete(t.payment_applications).where(*mine, pa.amount <= 0))


def insert_applications(conn: Connection, refund_id: int, taken: Iterable[tuple[int, int]]) -> None:
    rows = [{"refund_id": refund_id, "invoice_id": i, "amount": a} for i, a in taken]
    if rows:
        conn.execute(t.refund_applications.insert(), rows)


def add_refunded(conn: Connection, payment_id: int, amount: int, *, now: int) -> bool:
    """Count a succeeded refund on its payment; False (nothing changed) if it would exceed the payment."""
    p = t.payments.c
    result = conn.execute(
        update(t.payments)
        .where(p.id == payment_id, p.amount_refunded + amount <= p.amount)
        .values(amount_refunded=p.amount_refunded + amount, updated_at=now)
    )
    return bool(result.rowcount == 1)


def has_any(conn: Connection, payment_id: int) -> bool:
    c = t.refunds.c
    return (
        conn.execute(select(c.id).where(c.payment_id == payment_id, c.status != "failed").limit(1)).first() is not None
    )


def payment_of(conn: Connection, company_id: int, gateway_payment_id: str) -> int | None:
    """The id of the company's payment the gateway took under ``gateway_payment_id``."""
    p = t.payments.c
    query = select(p.id).where(p.company_id == company_id, p.gateway_payment_id == gateway_payment_id)
    found = conn.execute(query).scalar()
    return None if found is None else int(found)
