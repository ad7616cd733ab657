"""Queries for customers and their documents: invoices, payments, credit notes, estimates.

Functions of a ``Connection``, run inside the caller's transaction. They hold
no business rules: those are in :mod:`billportal.services.billing`, the only
code that calls the writing functions here. Every read takes a :class:`Scope`,
so a query can only ever return what its caller may see: one company's
objects, or one customer's visible documents.

Money is written with conditional updates (:func:`settle`, :func:`unsettle`):
an invoice's balance only moves while it stays between 0 and its total, whatever
another transaction did meanwhile.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from functools import cache, lru_cache
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Table,
    bindparam,
    case,
    delete,
    false,
    func,
    literal,
    select,
    update,
)

from billportal.core.bounds import storable_text
from billportal.storage import refunds
from billportal.storage import schema as t
from billportal.storage.bounds import check_row, fits
from billportal.storage.dialect import insert_or_nothing
from billportal.storage.prebuilt import Prebuilt, any_of, list_size, listed, one_of
from billportal.storage.records import (
    CreditNote,
    Customer,
    CustomerEvent,
    Estimate,
    Invoice,
    Ledger,
    LedgerApplication,
    LedgerCreditNote,
    LedgerInvoice,
    LedgerPayment,
    LedgerRefund,
    LineItem,
    Payment,
    PaymentApplication,
)

TABLES: Final[dict[str, Table]] = {
    "customer": t.customers,
    "invoice": t.invoices,
    "payment": t.payments,
    "credit_note": t.credit_notes,
    "estimate": t.estimates,
}
DOCUMENT_KINDS: Final = ("invoice", "payment", "credit_note", "estimate")
RECORDS: Final = {
    "customer": Customer,
    "invoice": Invoice,
    "payment": Payment,
    "credit_note": CreditNote,
    "estimate": Estimate,
}
# Statuses a statement counts: drafts and voided documents do not.
LEDGER_INVOICE_STATUSES: Final = ("open", "paid")
LEDGER_CREDIT_NOTE_STATUSES: Final = ("open", "applied")


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose objects a read may return: one company's, or only one customer's documents (drafts never shown)."""

    company_id: int
    customer_id: int | None = None

    def where(self, table: Table) -> list[ColumnElement[bool]]:
        return _scope_conditions(table, self.company_id, self.customer_id)

    def params(self) -> dict[str, int]:
        """The values of the bound conditions a prebuilt read has for this scope (see _bound_scope)."""
        found = {"company_id": self.company_id}
        if self.customer_id is not None:
            found["customer_id"] = self.customer_id
        return found


def _scope_conditions(table: Table, company_id: Any, customer_id: Any) -> list[ColumnElement[bool]]:
    """A company's objects, or one customer's documents but drafts (the values may be bound parameters)."""
    c = table.c
    conditions = [c.company_id == company_id]
    if customer_id is not None:
        conditions.append(c.customer_id == customer_id)
        if "status" in c:
            conditions.append(c.status != "draft")
    return conditions


def _bound_scope(table: Table, customer_scoped: bool) -> list[ColumnElement[bool]]:
    c = table.c
    customer = bindparam("customer_id", type_=c.customer_id.type) if customer_scoped else None
    return _scope_conditions(table, bindparam("company_id", type_=c.company_id.type), customer)


@cache
def _columns(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name not in ("lines", "applications", "refunds"))


def _record(kind: str, row: Any, **parts: Any) -> Any:
    """A record from a row (a SQLAlchemy Row, or a prebuilt read's named tuple), by column name."""
    cls = RECORDS[kind]
    return cls(*_picker(cls, row._fields)(row), **parts)


@cache
def _picker(cls: type, row_fields: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The record's columns, in its fields' order, out of a row with those columns (looked up once)."""
    # The parts (lines, applications, refunds) are the records' last fields: given by name after these.
    return operator.itemgetter(*(row_fields.index(name) for name in _columns(cls)))


# -- reading --------------------------------------------------------------------------------


def _lines_of(conn: Connection, kind: str, ids: Sequence[int]) -> dict[int, tuple[LineItem, ...]]:
    found: dict[int, list[LineItem]] = {i: [] for i in ids}
    if ids:
        rows = _lines_statement(kind, list_size(ids)).rows(conn, listed(ids))
        for document_id, *line in rows:
            found[document_id].append(LineItem(*line))
    return {i: tuple(lines) for i, lines in found.items()}


@lru_cache(maxsize=64)
def _lines_statement(kind: str, size: int) -> Prebuilt:
    li = t.line_items.c
    return Prebuilt(
        select(li.document_id, li.position, li.description, li.quantity, li.unit_price, li.discount, li.tax, li.amount)
        .where(li.document_kind == kind, any_of(li.document_id, size))
        .order_by(li.document_id, li.position)
    )


def _applications_of(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[PaymentApplication, ...]]:
    found: dict[int, list[PaymentApplication]] = {i: [] for i in ids}
    if ids:
        for payment_id, *application in _applications_statement(list_size(ids)).rows(conn, listed(ids)):
            found[payment_id].append(PaymentApplication(*application))
    return {i: tuple(applications) for i, applications in found.items()}


@lru_cache(maxsize=64)
def _applications_statement(size: int) -> Prebuilt:
    pa, inv = t.payment_applications.c, t.invoices.c
    return Prebuilt(
        select(pa.payment_id, pa.invoice_id, inv.number, pa.amount)
        .join(t.invoices, inv.id == pa.invoice_id)
        .where(any_of(pa.payment_id, size))
        .order_by(pa.payment_id, inv.number, pa.invoice_id)
    )


def complete(conn: Connection, kind: str, rows: Sequence[Any], *, parts: bool = True) -> list[Any]:
    """Rows as records; with ``parts``, documents with their lines and payments with their applications."""
    if not parts or kind == "customer":
        return [_record(kind, r) for r in rows]
    ids = [r.id for r in rows]
    if kind == "payment":
        applications = _applications_of(conn, ids)
        # Only a payment with money refunded, or taken online (a refund may be pending or failed), has refunds.
        given_back = refunds.of_payments(conn, [r.id for r in rows if r.amount_refunded or r.gateway_payment_id])
        return [_record(kind, r, applications=applications[r.id], refunds=given_back.get(r.id, ())) for r in rows]
    lines = _lines_of(conn, kind, ids)
    return [_record(kind, r, lines=lines[r.id]) for r in rows]


def get(conn: Connection, kind: str, scope: Scope, object_id: int) -> Any:
    """One object in scope, complete (None when there is none, or it is out of scope: alike)."""
    table = TABLES[kind]
    if not fits(table.c.id, object_id):
        return None
    rows = _one_statement(kind, scope.customer_id is not None).named_rows(conn, scope.params() | {"id": object_id})
    return complete(conn, kind, rows)[0] if rows else None


@cache
def _one_statement(kind: str, customer_scoped: bool) -> Prebuilt:
    table = TABLES[kind]
    c = table.c
    return Prebuilt(
        select(table).where(c.id == bindparam("id", type_=c.id.type), *_bound_scope(table, customer_scoped))
    )


def customer(conn: Connection, company_id: int, customer_id: int) -> Customer | None:
    found: Customer | None = get(conn, "customer", Scope(company_id), customer_id)
    return found


def customers(conn: Connection, company_id: int, limit: int = 100) -> list[Customer]:
    c = t.customers.c
    rows = conn.execute(select(t.customers).where(c.company_id == company_id).order_by(c.id).limit(limit)).all()
    return complete(conn, "customer", rows)


def customers_among(conn: Connection, company_id: int, ids: Sequence[int]) -> dict[int, Customer]:
    """The company's customers among ``ids``, by id (ids that no row can have are none)."""
    c = t.customers.c
    wanted = sorted({customer_id for customer_id in ids if fits(c.id, customer_id)})
    found: dict[int, Customer] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(select(t.customers).where(c.company_id == company_id, c.id.in_(chunk))).all()
        found.update((customer.id, customer) for customer in complete(conn, "customer", rows))
    return found


def listing(
    conn: Connection,
    kind: str,
    company_id: int,
    *,
    limit: int,
    after_id: int | None = None,
    updated_after: int | None = None,
    customer_id: int | None = None,
    status: str | None = None,
) -> tuple[list[Any], bool]:
    """Objects in id order after ``after_id``, and whether more follow (keyset paging: the same cost at any depth)."""
    table = TABLES[kind]
    c = table.c
    where = [c.company_id == company_id]
    if after_id is not None:
        if not fits(c.id, after_id + 1):
            return [], False
        where.append(c.id > after_id)
    if updated_after is not None:
        where.append(c.updated_at > updated_after)
    if customer_id is not None and kind != "customer":
        where.append(c.customer_id == customer_id)
    if status is not None and "status" in c:
        where.append(c.status == status)
    rows = conn.execute(select(table).where(*where).order_by(c.id).limit(limit + 1)).all()
    return complete(conn, kind, rows[:limit]), len(rows) > limit


def _newest_first(table: Table) -> tuple[Any, ...]:
    c = table.c
    dated = c.received_on if table is t.payments else c.issued_on
    return (dated.desc(), c.id.desc())


def page(
    conn: Connection,
    kind: str,
    scope: Scope,
    *,
    limit: int,
    offset: int = 0,
    statuses: tuple[str, ...] = (),
    where: Sequence[ColumnElement[bool]] = (),
    count: bool = True,
) -> tuple[list[Any], int]:
    """One page of documents in scope, newest first (without lines), and how many match in all.

    Without other conditions than ``statuses`` (the portal's lists, My Account), the statements are prebuilt.
    """
    table = TABLES[kind]
    if not where:
        listed, counted = _page_statements(kind, scope.customer_id is not None, statuses)
        params = scope.params()
        total = counted.rows(conn, params)[0][0] if count else 0
        rows = listed.named_rows(conn, params | {"limit": limit, "offset": offset})
        return complete(conn, kind, rows, parts=False), int(total)
    conditions = [*scope.where(table), *_with_statuses(table, statuses), *where]
    total = conn.execute(select(func.count()).select_from(table).where(*conditions)).scalar_one() if count else 0
    found = conn.execute(
        select(table).where(*conditions).order_by(*_newest_first(table)).limit(limit).offset(offset)
    ).all()
    return complete(conn, kind, found, parts=False), int(total)


def _with_statuses(table: Table, statuses: tuple[str, ...]) -> list[ColumnElement[bool]]:
    return [table.c.status.in_(statuses)] if statuses else []


@cache
def _page_statements(kind: str, customer_scoped: bool, statuses: tuple[str, ...]) -> tuple[Prebuilt, Prebuilt]:
    """(the page's rows, newest first, by limit and offset; how many there are in all)."""
    table = TABLES[kind]
    c = table.c
    conditions = _bound_scope(table, customer_scoped)
    if statuses:  # the code's own constants: written into the statement, one statement per set
        conditions.append(one_of(c.status, statuses))
    listed = (
        select(table)
        .where(*conditions)
        .order_by(*_newest_first(table))
        .limit(bindparam("limit", type_=Integer()))
        .offset(bindparam("offset", type_=Integer()))
    )
    counted = select(func.count().label("total")).select_from(table).where(*conditions)
    return Prebuilt(listed), Prebuilt(counted)


def invoice_filters(past_due_before: str | None = None, number_contains: str = "") -> list[ColumnElement[bool]]:
    """The invoice list's filters besides statuses (see page): past due on a date, part of the number."""
    c = t.invoices.c
    where: list[ColumnElement[bool]] = []
    if past_due_before is not None:
        where += [c.status == "open", c.due_on < past_due_before]
    if number_contains and not storable_text(number_contains):
        where.append(false())  # no number holds a NUL, and PostgreSQL refuses one even to compare
    elif number_contains:
        escaped = number_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(c.number.ilike(f"%{escaped}%", escape="\\"))
    return where


def settlements(conn: Connection, scope: Scope, invoice_id: int) -> tuple[list[tuple[Payment, int]], list[CreditNote]]:
    """What settled one invoice: its payments (each with the amount applied to it) and its credit notes."""
    paid_by, noted = _settlements_statements(scope.customer_id is not None)
    params = scope.params() | {"invoice_id": invoice_id}
    payments = [(_record("payment", r), int(r.applied)) for r in paid_by.named_rows(conn, params)]
    return payments, [_record("credit_note", r) for r in noted.named_rows(conn, params)]


@cache
def _settlements_statements(customer_scoped: bool) -> tuple[Prebuilt, Prebuilt]:
    p, pa, cn = t.payments.c, t.payment_applications.c, t.credit_notes.c
    paid_by = (
        select(t.payments, pa.amount.label("applied"))
        .join(t.payment_applications, pa.payment_id == p.id)
        .where(pa.invoice_id == bindparam("invoice_id", type_=pa.invoice_id.type))
        .where(*_bound_scope(t.payments, customer_scoped))
        .order_by(p.received_on, p.id)
    )
    noted = (
        select(t.credit_notes)
        .where(cn.invoice_id == bindparam("invoice_id", type_=cn.invoice_id.type), cn.status == "applied")
        .where(*_bound_scope(t.credit_notes, customer_scoped))
        .order_by(cn.issued_on, cn.id)
    )
    return Prebuilt(paid_by), Prebuilt(noted)


def account_balance(
    conn: Connection, company_id: int, customer_id: int, currency: str, today: str | None
) -> tuple[int, int, int]:
    """(owed on open invoices, of which past due on ``today``, unused credit), in one query."""
    params = {"company_id": company_id, "customer_id": customer_id, "currency": currency, "today": today}
    o, late, n, r, a = (int(v) for v in _account_balance_statement(today is not None).rows(conn, params)[0])
    return o, late, n + r - a


@cache
def _account_balance_statement(dated: bool) -> Prebuilt:
    """Built once per process (a page asks for it on every view): five sums as scalar subqueries."""
    inv, cn, pay, app = t.invoices.c, t.credit_notes.c, t.payments.c, t.payment_applications.c
    company_id = bindparam("company_id", type_=inv.company_id.type)
    customer_id = bindparam("customer_id", type_=inv.customer_id.type)
    currency = bindparam("currency", type_=inv.currency.type)
    open_invoices = (inv.company_id == company_id, inv.customer_id == customer_id, inv.currency == currency)
    owed = select(func.coalesce(func.sum(inv.balance), 0)).where(*open_invoices, inv.status == "open")
    past_due = owed.where(inv.due_on < bindparam("today", type_=inv.due_on.type)) if dated else select(literal(0))
    notes = select(func.coalesce(func.sum(cn.total), 0)).where(
        cn.company_id == company_id, cn.customer_id == customer_id, cn.currency == currency, cn.status == "open"
    )
    received = select(func.coalesce(func.sum(pay.amount - pay.amount_refunded), 0)).where(
        pay.company_id == company_id, pay.customer_id == customer_id, pay.currency == currency
    )
    # Applied to an invoice that still counts; what went to a voided one is credit again.
    applied = (
        select(func.coalesce(func.sum(app.amount), 0))
        .join(t.payments, pay.id == app.payment_id)
        .join(t.invoices, inv.id == app.invoice_id)
        .where(pay.company_id == company_id, pay.customer_id == customer_id, pay.currency == currency)
        .where(one_of(inv.status, LEDGER_INVOICE_STATUSES), inv.currency == currency)
    )
    sums = {"owed": owed, "past_due": past_due, "notes": notes, "received": received, "applied": applied}
    return Prebuilt(select(*(q.scalar_subquery().label(name) for name, q in sums.items())))


def _customer_binds() -> tuple[Any, Any, Any]:
    c = t.invoices.c
    return (
        bindparam("company_id", type_=c.company_id.type),
        bindparam("customer_id", type_=c.customer_id.type),
        bindparam("currency", type_=c.currency.type),
    )


def _payments_of(company_id: Any, customer_id: Any, currency: Any) -> tuple[ColumnElement[bool], ...]:
    pay = t.payments.c
    return (pay.company_id == company_id, pay.customer_id == customer_id, pay.currency == currency)


@cache
def _activity_span_statement() -> Prebuilt:
    """Built once per process: the first and last day of each kind of statement activity, six scalar subqueries."""
    inv, pay, cn = t.invoices.c, t.payments.c, t.credit_notes.c
    company_id, customer_id, currency = _customer_binds()
    until = bindparam("until", type_=inv.issued_on.type)
    kinds = (
        (
            inv.issued_on,
            [
                inv.company_id == company_id,
                inv.customer_id == customer_id,
                inv.currency == currency,
                one_of(inv.status, LEDGER_INVOICE_STATUSES),
                inv.issued_on <= until,
            ],
        ),
        (
            pay.received_on,
            [*_payments_of(company_id, customer_id, currency), pay.received_on <= until],
        ),
        (
            cn.issued_on,
            [
                cn.company_id == company_id,
                cn.customer_id == customer_id,
                cn.currency == currency,
                one_of(cn.status, LEDGER_CREDIT_NOTE_STATUSES),
                cn.issued_on <= until,
            ],
        ),
    )
    parts = [
        select(bound(on)).where(*where).scalar_subquery().label(f"{name}_{i}")
        for i, (on, where) in enumerate(kinds)
        for name, bound in (("first", func.min), ("last", func.max))
    ]
    return Prebuilt(select(*parts))


def activity_span(
    conn: Connection, company_id: int, customer_id: int, currency: str, until: str
) -> tuple[str | None, str | None]:
    """The first and the last day of a customer's statement activity up to ``until`` (one query); None if none."""
    params = {"company_id": company_id, "customer_id": customer_id, "currency": currency, "until": until}
    found = _activity_span_statement().rows(conn, params)[0]
    firsts = [day for day in found[0::2] if day is not None]
    lasts = [day for day in found[1::2] if day is not None]
    return (min(firsts) if firsts else None), (max(lasts) if lasts else None)


@cache
def _ledger_statements() -> tuple[Prebuilt, Prebuilt, Prebuilt, Prebuilt]:
    """Built once per process: a statement's invoices, payments, applications and credit notes."""
    inv, pay, app, cn = t.invoices.c, t.payments.c, t.payment_applications.c, t.credit_notes.c
    company_id, customer_id, currency = _customer_binds()
    payments_of = _payments_of(company_id, customer_id, currency)
    invoices = select(inv.id, inv.number, inv.issued_on, inv.due_on, inv.total).where(
        inv.company_id == company_id,
        inv.customer_id == customer_id,
        inv.currency == currency,
        one_of(inv.status, LEDGER_INVOICE_STATUSES),
        inv.issued_on <= bindparam("until", type_=inv.issued_on.type),
    )
    payments = select(pay.id, pay.number, pay.received_on, pay.method, pay.amount, pay.amount_refunded).where(
        *payments_of
    )
    applications = (
        select(app.payment_id, app.invoice_id, app.amount)
        .join(t.payments, pay.id == app.payment_id)
        .where(*payments_of)
    )
    credit_notes = select(cn.id, cn.number, cn.issued_on, cn.invoice_id, cn.total).where(
        cn.company_id == company_id,
        cn.customer_id == customer_id,
        cn.currency == currency,
        one_of(cn.status, LEDGER_CREDIT_NOTE_STATUSES),
    )
    return Prebuilt(invoices), Prebuilt(payments), Prebuilt(applications), Prebuilt(credit_notes)


def ledger(conn: Connection, company_id: int, customer_id: int, currency: str, until: str) -> Ledger:
    """The documents a statement up to ``until`` needs (four indexed queries; two more if refunds were made).

    Applications and credit notes of invoices in range are read whatever their
    date: an invoice's statement lines need everything applied to it so far.
    """
    invoices, payments_read, applications, credit_notes = _ledger_statements()
    params = {"company_id": company_id, "customer_id": customer_id, "currency": currency, "until": until}
    payments = tuple(map(LedgerPayment._make, payments_read.rows(conn, params)))
    refunded = any(payment.amount_refunded for payment in payments)  # else no refund to read: no query
    return Ledger(
        currency=currency,
        invoices=tuple(map(LedgerInvoice._make, invoices.rows(conn, params))),
        payments=payments,
        applications=tuple(map(LedgerApplication._make, applications.rows(conn, params))),
        credit_notes=tuple(map(LedgerCreditNote._make, credit_notes.rows(conn, params))),
        refunds=_ledger_refunds(conn, company_id, customer_id, currency) if refunded else (),
    )


def month_ledger(
    conn: Connection, company_id: int, customer_id: int, currency: str, *, since: str, until: str
) -> Ledger:
    """A balance-forward statement's ledger: the documents dated ``since`` to ``until``, and the balance before.

    The history before ``since`` is summed by the database (one query) rather than read row by row;
    there are no applications (a balance forward does not need them: open items read :func:`ledger`).
    """
    opening, invoices, payments, credit_notes, refunds = _month_ledger_statements()
    params = {"company_id": company_id, "customer_id": customer_id, "currency": currency}
    params |= {"since": since, "until": until}
    invoiced, paid, credited, refunded = (int(v) for v in opening.rows(conn, params)[0])
    return Ledger(
        currency=currency,
        invoices=tuple(map(LedgerInvoice._make, invoices.rows(conn, params))),
        payments=tuple(map(LedgerPayment._make, payments.rows(conn, params))),
        applications=(),
        credit_notes=tuple(map(LedgerCreditNote._make, credit_notes.rows(conn, params))),
        refunds=tuple(LedgerRefund(*row) for row in refunds.rows(conn, params)),
        opening=invoiced - paid - credited + refunded,
    )


@cache
def _month_ledger_statements() -> tuple[Prebuilt, Prebuilt, Prebuilt, Prebuilt, Prebuilt]:
    """Built once per process: the balance before a month (four sums), and the month's documents of each kind."""
    inv, pay, cn, re = t.invoices.c, t.payments.c, t.credit_notes.c, t.refunds.c
    company_id, customer_id, currency = _customer_binds()
    since = bindparam("since", type_=inv.issued_on.type)
    until = bindparam("until", type_=inv.issued_on.type)
    invoices_of = (
        inv.company_id == company_id,
        inv.customer_id == customer_id,
        inv.currency == currency,
        one_of(inv.status, LEDGER_INVOICE_STATUSES),
    )
    payments_of = _payments_of(company_id, customer_id, currency)
    notes_of = (
        cn.company_id == company_id,
        cn.customer_id == customer_id,
        cn.currency == currency,
        one_of(cn.status, LEDGER_CREDIT_NOTE_STATUSES),
    )
    refunded = t.refunds.join(t.payments, pay.id == re.payment_id)
    refunds_of = (*payments_of, re.status == "succeeded")
    before = {
        "invoiced": select(func.coalesce(func.sum(inv.total), 0)).where(*invoices_of, inv.issued_on < since),
        "paid": select(func.coalesce(func.sum(pay.amount), 0)).where(*payments_of, pay.received_on < since),
        "credited": select(func.coalesce(func.sum(cn.total), 0)).where(*notes_of, cn.issued_on < since),
        "refunded": select(func.coalesce(func.sum(re.amount), 0))
        .select_from(refunded)
        .where(*refunds_of, re.refunded_on < since),
    }
    opening = select(*(q.scalar_subquery().label(name) for name, q in before.items()))
    invoices = select(inv.id, inv.number, inv.issued_on, inv.due_on, inv.total).where(
        *invoices_of, inv.issued_on >= since, inv.issued_on <= until
    )
    payments = select(pay.id, pay.number, pay.received_on, pay.method, pay.amount, pay.amount_refunded).where(
        *payments_of, pay.received_on >= since, pay.received_on <= until
    )
    credit_notes = select(cn.id, cn.number, cn.issued_on, cn.invoice_id, cn.total).where(
        *notes_of, cn.issued_on >= since, cn.issued_on <= until
    )
    refunds = (
        select(re.id, re.payment_id, pay.number, re.refunded_on, re.amount)
        .select_from(refunded)
        .where(*refunds_of, re.refunded_on >= since, re.refunded_on <= until)
        .order_by(re.id)
    )
    return Prebuilt(opening), Prebuilt(invoices), Prebuilt(payments), Prebuilt(credit_notes), Prebuilt(refunds)


def _ledger_refunds(conn: Connection, company_id: int, customer_id: int, currency: str) -> tuple[LedgerRefund, ...]:
    """The customer's succeeded refunds, with what each took back from invoices (two indexed queries)."""
    pay, re, ra = t.payments.c, t.refunds.c, t.refund_applications.c
    mine = (pay.company_id == company_id, pay.customer_id == customer_id, pay.currency == currency)
    rows = conn.execute(
        select(re.id, re.payment_id, pay.number, re.refunded_on, re.amount)
        .join(t.payments, pay.id == re.payment_id)
        .where(*mine, re.status == "succeeded")
        .order_by(re.id)
    ).all()
    if not rows:
        return ()
    taken: dict[int, list[tuple[int, int]]] = {row.id: [] for row in rows}
    for part in conn.execute(
        select(ra.refund_id, ra.invoice_id, ra.amount).where(ra.refund_id.in_(list(taken))).order_by(ra.invoice_id)
    ):
        taken[part.refund_id].append((int(part.invoice_id), int(part.amount)))
    return tuple(LedgerRefund(*row, invoices=tuple(taken[row.id])) for row in rows)


def customer_events(
    conn: Connection, company_id: int, customer_id: int | None = None, limit: int = 50
) -> list[CustomerEvent]:
    c = t.customer_events.c
    where = [c.company_id == company_id]
    if customer_id is not None:
        where.append(c.customer_id == customer_id)
    rows = conn.execute(select(t.customer_events).where(*where).order_by(c.id.desc()).limit(limit)).all()
    return [CustomerEvent(r.id, r.company_id, r.customer_id, r.at, r.kind, r.detail) for r in rows]


# -- writing: only the billing service calls these ------------------------------------------------


def lock(conn: Connection, kind: str, company_id: int, object_id: int) -> Row[Any] | None:
    """The object's row, locked until the transaction ends (PostgreSQL; SQLite writes one at a time anyway)."""
    table = TABLES[kind]
    if not fits(table.c.id, object_id):
        return None
    return conn.execute(
        select(table).where(table.c.id == object_id, table.c.company_id == company_id).with_for_update()
    ).first()


def insert_customer(conn: Connection, values: dict[str, Any]) -> bool:
    """A new customer row; False (nothing written) if the company already has a customer with its id."""
    check_row(t.customers, values)
    statement = insert_or_nothing(conn, t.customers, values, ("company_id", "id")).returning(t.customers.c.id)
    return conn.execute(statement).first() is not None


def insert_customers(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[int]:
    """New customer rows, each with every column (checked by the caller): the ids of those inserted (not taken)."""
    if not rows:
        return set()
    statement = insert_or_nothing(conn, t.customers, {}, ("company_id", "id")).returning(t.customers.c.id)
    return set(conn.execute(statement, list(rows)).scalars())


def largest_customer_id(conn: Connection, company_id: int) -> int:
    c = t.customers.c
    return int(conn.execute(select(func.coalesce(func.max(c.id), 0)).where(c.company_id == company_id)).scalar_one())


def update_row(conn: Connection, kind: str, company_id: int, object_id: int, values: dict[str, Any]) -> None:
    """Change the columns in ``values`` of one row (the caller locked it and checked the rules)."""
    table = TABLES[kind]
    check_row(table, values)
    conn.execute(update(table).where(table.c.company_id == company_id, table.c.id == object_id).values(**values))


def first_document_kind(conn: Connection, company_id: int, customer_id: int) -> str | None:
    """A kind of document the customer has (to refuse deleting it), or None."""
    for kind in DOCUMENT_KINDS:
        table = TABLES[kind]
        c = table.c
        if conn.execute(select(c.id).where(c.company_id == company_id, c.customer_id == customer_id).limit(1)).first():
            return kind
    return None


def delete_customer(conn: Connection, company_id: int, customer_id: int) -> None:
    c = t.customers.c
    conn.execute(delete(t.customers).where(c.company_id == company_id, c.id == customer_id))
    k = t.contacts.c
    conn.execute(delete(t.contacts).where(k.company_id == company_id, k.customer_id == customer_id))


def _line_rows(kind: str, document_id: int, lines: Sequence[LineItem]) -> list[dict[str, Any]]:
    return [
        {
            "document_kind": kind,
            "document_id": document_id,
            "position": line.position,
            "description": line.description,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "discount": line.discount,
            "tax": line.tax,
            "amount": line.amount,
        }
        for line in lines
    ]


def insert_lines(conn: Connection, kind: str, document_id: int, lines: Sequence[LineItem]) -> None:
    if not lines:
        return
    rows = _line_rows(kind, document_id, lines)
    for row in rows:
        check_row(t.line_items, row)
    conn.execute(t.line_items.insert(), rows)


def check_document(kind: str, values: dict[str, Any], lines: Sequence[LineItem]) -> None:
    """Refuse a new document or line that its columns cannot hold (as insert_document would, before writing)."""
    check_row(TABLES[kind], values)
    for row in _line_rows(kind, 1, lines):
        check_row(t.line_items, row)


def insert_documents(
    conn: Connection, kind: str, documents: Sequence[tuple[dict[str, Any], Sequence[LineItem]]]
) -> dict[str, int]:
    """New documents, each with its number and its lines (checked by check_document), in a few statements.

    The ids of those inserted, by number; one whose number the company has already is skipped.
    """
    if not documents:
        return {}
    table = TABLES[kind]
    statement = insert_or_nothing(conn, table, {}, ("company_id", "number")).returning(table.c.id, table.c.number)
    made = {number: int(document_id) for document_id, number in conn.execute(statement, [row for row, _ in documents])}
    lines = [
        line
        for row, items in documents
        if row["number"] in made
        for line in _line_rows(kind, made[row["number"]], items)
    ]
    if lines:
        conn.execute(t.line_items.insert(), lines)
    return made


def insert_document(conn: Connection, kind: str, values: dict[str, Any], lines: Sequence[LineItem] = ()) -> int | None:
    """A new document and its lines; None (nothing written) if the company has one of this kind with its number."""
    table = TABLES[kind]
    check_row(table, values)
    statement = insert_or_nothing(conn, table, values, ("company_id", "number")).returning(table.c.id)
    document_id = conn.execute(statement).scalar()
    if document_id is None:
        return None
    insert_lines(conn, kind, int(document_id), lines)
    return int(document_id)


def replace_lines(conn: Connection, kind: str, document_id: int, lines: Sequence[LineItem]) -> None:
    li = t.line_items.c
    conn.execute(delete(t.line_items).where(li.document_kind == kind, li.document_id == document_id))
    insert_lines(conn, kind, document_id, lines)


def delete_document(conn: Connection, kind: str, document_id: int) -> None:
    li, table = t.line_items.c, TABLES[kind]
    if kind == "payment":
        conn.execute(delete(t.payment_applications).where(t.payment_applications.c.payment_id == document_id))
    else:
        conn.execute(delete(t.line_items).where(li.document_kind == kind, li.document_id == document_id))
    conn.execute(delete(table).where(table.c.id == document_id))


def number_taken(conn: Connection, kind: str, company_id: int, number: str, own_id: int | None = None) -> bool:
    c = TABLES[kind].c
    where = [c.company_id == company_id, c.number == number]
    if own_id is not None:
        where.append(c.id != own_id)
    return conn.execute(select(c.id).where(*where)).first() is not None


def next_number(conn: Connection, company_id: int, kind: str, prefix: str) -> str:
    """The next free ``{prefix}-00042`` of the company's documents of ``kind``.

    A counter row per company and kind, advanced by an ``UPDATE``: its row lock
    makes concurrent creations take turns, so two never draw the same number.
    A number taken by hand is skipped.
    """
    s = t.number_sequences.c
    advance = (
        update(t.number_sequences)
        .where(s.company_id == company_id, s.kind == kind)
        .values(next_value=s.next_value + 1)
        .returning(s.next_value)
    )
    while True:
        drawn = conn.execute(advance).scalar()
        if drawn is None:
            table = TABLES[kind]
            existing = conn.execute(
                select(func.count()).select_from(table).where(table.c.company_id == company_id)
            ).scalar_one()
            start = {"company_id": company_id, "kind": kind, "next_value": int(existing) + 1}
            conn.execute(insert_or_nothing(conn, t.number_sequences, start, ("company_id", "kind")))
            continue
        number = f"{prefix}-{int(drawn) - 1:05d}"
        if not number_taken(conn, kind, company_id, number):
            return number


def settle(conn: Connection, company_id: int, invoice_id: int, *, paid: int, credited: int, now: int) -> bool:
    """Take a payment or a credit off an open invoice's balance: paid when nothing is left.

    One conditional update: False, and nothing changed, unless the invoice is
    open and its balance (as it is now, after any concurrent write) covers the amount.
    """
    c, amount = t.invoices.c, paid + credited
    result = conn.execute(
        update(t.invoices)
        .where(c.id == invoice_id, c.company_id == company_id, c.status == "open", c.balance >= amount)
        .values(
            amount_paid=c.amount_paid + paid,
            amount_credited=c.amount_credited + credited,
            balance=c.balance - amount,
            status=case((c.balance == amount, literal("paid")), else_=literal("open")),
            updated_at=now,
        )
    )
    return bool(result.rowcount == 1)


def unsettle(conn: Connection, company_id: int, invoice_id: int, *, paid: int, credited: int, now: int) -> bool:
    """Give back what a payment or a credit took off an invoice (a paid invoice is open again)."""
    c = t.invoices.c
    result = conn.execute(
        update(t.invoices)
        .where(
            c.id == invoice_id,
            c.company_id == company_id,
            c.status.in_(("open", "paid")),
            c.amount_paid >= paid,
            c.amount_credited >= credited,
        )
        .values(
            amount_paid=c.amount_paid - paid,
            amount_credited=c.amount_credited - credited,
            balance=c.balance + paid + credited,
            status="open",
            updated_at=now,
        )
    )
    return bool(result.rowcount == 1)


def insert_applications(conn: Connection, payment_id: int, applications: Iterable[tuple[int, int]]) -> None:
    rows = [{"payment_id": payment_id, "invoice_id": i, "amount": a} for i, a in applications]
    if rows:
        conn.execute(t.payment_applications.insert(), rows)


def applications(conn: Connection, payment_id: int) -> list[tuple[int, int]]:
    """(invoice id, amount) of each part of a payment, in invoice id order."""
    pa = t.payment_applications.c
    rows = conn.execute(
        select(pa.invoice_id, pa.amount).where(pa.payment_id == payment_id).order_by(pa.invoice_id)
    ).all()
    return [(int(r.invoice_id), int(r.amount)) for r in rows]


def record_customer_event(
    conn: Connection, company_id: int, customer_id: int, kind: str, detail: dict[str, Any], *, now: int
) -> None:
    conn.execute(
        t.customer_events.insert().values(
            company_id=company_id, customer_id=customer_id, at=now, kind=kind, detail=json.dumps(detail, sort_keys=True)
        )
    )


def due_invoices(conn: Connection, company_id: int, customer_id: int, today: str) -> list[Invoice]:
    """The customer's open invoices that are due on ``today`` or before (no due date: due on receipt), oldest first."""
    c = t.invoices.c
    rows = conn.execute(
        select(t.invoices)
        .where(
            c.company_id == company_id,
            c.customer_id == customer_id,
            c.status == "open",
            c.balance > 0,
            (c.due_on.is_(None)) | (c.due_on <= today),
        )
        .order_by(c.due_on, c.id)
    ).all()
    found: list[Invoice] = complete(conn, "invoice", rows, parts=False)
    return found
