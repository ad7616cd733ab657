"""The dashboard's lists of documents: filters, and keyset paging newest first (the same cost at any depth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, false, select

from billportal.core.bounds import storable_text
from billportal.storage import schema as t
from billportal.storage.bounds import fits
from billportal.storage.documents import TABLES, complete


@dataclass(frozen=True, slots=True)
class DocumentFilters:
    """What a list shows: each filter None (or empty) for all."""

    status: str | None = None
    customer_id: int | None = None
    date_from: str | None = None  # on the document's date (issued_on; received_on for payments), inclusive
    date_to: str | None = None
    overdue_on: str | None = None  # invoices open and due before this day
    online: bool | None = None  # payments taken online (True) or recorded offline (False)
    number: str = ""  # part of the number, in any case


def _date_column(kind: str) -> Any:
    table = TABLES[kind]
    return table.c.received_on if kind == "payment" else table.c.issued_on


def _conditions(kind: str, company_id: int, filters: DocumentFilters) -> list[ColumnElement[bool]]:
    table = TABLES[kind]
    c = table.c
    dated = _date_column(kind)
    where: list[ColumnElement[bool]] = [c.company_id == company_id]
    if filters.status is not None and "status" in c:
        where.append(c.status == filters.status)
    if filters.customer_id is not None:
        where.append(c.customer_id == filters.customer_id if fits(t.customers.c.id, filters.customer_id) else false())
    if filters.date_from is not None:
        where.append(dated >= filters.date_from)
    if filters.date_to is not None:
        where.append(dated <= filters.date_to)
    if filters.overdue_on is not None and kind == "invoice":
        where += [c.status == "open", c.balance > 0, c.due_on < filters.overdue_on]
    if filters.online is not None and kind == "payment":
        where.append(c.gateway_payment_id.is_not(None) if filters.online else c.gateway_payment_id.is_(None))
    if filters.number and not storable_text(filters.number):
        where.append(false())  # no number holds a NUL, and PostgreSQL refuses one even to compare
    elif filters.number:
        escaped = filters.number.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(c.number.ilike(f"%{escaped}%", escape="\\"))
    return where


def document_page(
    conn: Connection,
    kind: str,
    company_id: int,
    filters: DocumentFilters,
    *,
    limit: int,
    before_id: int | None = None,
    parts: bool = False,
) -> tuple[list[Any], bool]:
    """Documents newest first (by id) before ``before_id``, and whether more follow."""
    table = TABLES[kind]
    where = _conditions(kind, company_id, filters)
    if before_id is not None:
        if not fits(table.c.id, before_id):
            before_id = None if before_id > 0 else 0
        if before_id is not None:
            where.append(table.c.id < before_id)
    rows = conn.execute(select(table).where(*where).order_by(table.c.id.desc()).limit(limit + 1)).all()
    return complete(conn, kind, rows[:limit], parts=parts), len(rows) > limit
