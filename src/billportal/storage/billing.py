"""Billing documents beyond invoices: payments, credit notes, estimates, customer events.

Every read takes the company id and the customer id, so a query can only ever
return the signed-in customer's own documents. Writes keep the invoices they
touch consistent in the same transaction: a payment or a credit note applied to
an invoice lowers its balance, and an invoice whose balance reaches zero is paid.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, func, insert, literal, or_, select, update
from sqlalchemy import exc as sa_exc

from billportal.storage import schema as t
from billportal.storage.backend import Backend
from billportal.storage.errors import Conflict, NotFound
from billportal.storage.records import (
    CreditNote,
    CustomerEvent,
    Estimate,
    LineInput,
    LineItem,
    Payment,
    PaymentApplication,
    line_amount,
)
from billportal.storage.statements import (
    INVOICE_STATUSES,
    AccountBalance,
    BalanceForwardStatement,
    Month,
    OpenItemStatement,
    balance_forward,
    load_ledger,
    open_items,
)

PAYMENT_METHODS = ("ach", "bank_transfer", "card", "cash", "check", "other")
BILLING_FIELDS = (
    "name",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
)


def _lines(conn: Connection, kind: str, document_id: int) -> tuple[LineItem, ...]:
    li = t.line_items.c
    rows = conn.execute(
        select(t.line_items).where(li.document_kind == kind, li.document_id == document_id).order_by(li.position)
    ).all()
    return tuple(
        LineItem(r.position, r.description, r.quantity, r.unit_price, r.discount, r.tax, r.amount) for r in rows
    )


def insert_lines(conn: Connection, kind: str, document_id: int, lines: Sequence[LineInput]) -> None:
    """Store a document's lines, numbered from 1 in the order given."""
    if not lines:
        return
    conn.execute(
        insert(t.line_items),
        [
            {
                "document_kind": kind,
                "document_id": document_id,
                "position": position,
                "description": line.description,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount": line.discount,
                "tax": line.tax,
                "amount": line.amount,
            }
            for position, line in enumerate(lines, start=1)
        ],
    )


def insert_document(
    conn: Connection, table: Table, kind: str, values: dict[str, Any], lines: Sequence[LineInput]
) -> int:
    """Insert an invoice, credit note or estimate and its lines; Conflict if its number is taken."""
    try:
        document_id: int = conn.execute(insert(table).values(**values).returning(table.c.id)).scalar_one()
    except sa_exc.IntegrityError:
        label = kind.replace("_", " ")
        raise Conflict(f"{label} number {values['number']!r} already exists") from None
    insert_lines(conn, kind, document_id, lines)
    return document_id


def page_of(
    conn: Connection,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    *,
    limit: int,
    offset: int,
) -> tuple[Sequence[Row[Any]], int]:
    """One page of rows, and how many match in all."""
    total: int = conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
    rows = conn.execute(select(table).where(*where).order_by(*order_by).limit(limit).offset(offset)).all()
    return rows, total


def visible_to(table: Table, company_id: int, customer_id: int) -> list[ColumnElement[bool]]:
    """The customer's own documents of this company, drafts left out: every portal read starts here."""
    c = table.c
    return [c.company_id == company_id, c.customer_id == customer_id, c.status != "draft"]


def visible_document(
    conn: Connection, table: Table, document_id: int, company_id: int, customer_id: int
) -> Row[Any] | None:
    """One document if, and only if, this customer may see it."""
    return conn.execute(
        select(table).where(table.c.id == document_id, *visible_to(table, company_id, customer_id))
    ).first()


def totals(lines: Sequence[LineInput]) -> tuple[int, int, int, int]:
    """(subtotal, discount, tax, total) of some lines, in minor units."""
    subtotal = sum(line_amount(x.quantity, x.unit_price, 0, 0) for x in lines)
    discount = sum(x.discount for x in lines)
    tax = sum(x.tax for x in lines)
    return subtotal, discount, tax, subtotal - discount + tax


def _payment(row: Row[Any], applications: Iterable[PaymentApplication] = ()) -> Payment:
    return Payment(
        id=row.id,
        company_id=row.company_id,
        customer_id=row.customer_id,
        number=row.number,
        currency=row.currency,
        received_on=row.received_on,
        method=row.method,
        reference=row.reference,
        amount=row.amount,
        applications=tuple(applications),
    )


def _credit_note(row: Row[Any], lines: tuple[LineItem, ...] = ()) -> CreditNote:
    return CreditNote(
        id=row.id,
        company_id=row.company_id,
        customer_id=row.customer_id,
        number=row.number,
        currency=row.currency,
        status=row.status,
        issued_on=row.issued_on,
        invoice_id=row.invoice_id,
        subtotal=row.subtotal,
        tax=row.tax,
        total=row.total,
        notes=row.notes,
        lines=lines,
    )


def _estimate(row: Row[Any], lines: tuple[LineItem, ...] = ()) -> Estimate:
    return Estimate(
        id=row.id,
        company_id=row.company_id,
        customer_id=row.customer_id,
        number=row.number,
        currency=row.currency,
        status=row.status,
        issued_on=row.issued_on,
        expires_on=row.expires_on,
        subtotal=row.subtotal,
        tax=row.tax,
        total=row.total,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        notes=row.notes,
        lines=lines,
    )


def settle_invoice(
    conn: Connection, company_id: int, customer_id: int, invoice_id: int, *, paid: int, credited: int, now: int
) -> None:
    """Lower an open invoice's balance by a payment or credit; paid when nothing is left."""
    c = t.invoices.c
    row = conn.execute(
        select(c.balance, c.status).where(c.id == invoice_id, c.company_id == company_id, c.customer_id == customer_id)
    ).first()
    if row is None or row.status != "open":
        raise NotFound(f"invoice {invoice_id} is not an open invoice of this customer")
    amount = paid + credited
    if amount <= 0 or amount > row.balance:
        raise Conflict(f"the amount applied to invoice {invoice_id} must be between 0 and its balance")
    balance = row.balance - amount
    conn.execute(
        update(t.invoices)
        .where(c.id == invoice_id)
        .values(
            amount_paid=c.amount_paid + paid,
            amount_credited=c.amount_credited + credited,
            balance=balance,
            status="paid" if balance == 0 else "open",
            updated_at=now,
        )
    )


def _payments_for_invoice(
    conn: Connection, company_id: int, customer_id: int, invoice_id: int
) -> list[tuple[Payment, int]]:
    c, pa = t.payments.c, t.payment_applications.c
    rows = conn.execute(
        select(t.payments, pa.amount.label("applied"))
        .join(t.payment_applications, pa.payment_id == c.id)
        .where(pa.invoice_id == invoice_id, c.company_id == company_id, c.customer_id == customer_id)
        .order_by(c.received_on, c.id)
    ).all()
    return [(_payment(r), r.applied) for r in rows]


def record_customer_event(
    conn: Connection, company_id: int, customer_id: int, kind: str, detail: dict[str, Any], *, now: int
) -> None:
    conn.execute(
        insert(t.customer_events).values(
            company_id=company_id, customer_id=customer_id, at=now, kind=kind, detail=json.dumps(detail, sort_keys=True)
        )
    )


class Billing:
    """Payments, credit notes, estimates and billing details, scoped to one customer."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- payments ------------------------------------------------------------------

    async def create_payment(
        self,
        company_id: int,
        customer_id: int,
        *,
        number: str,
        currency: str,
        received_on: str,
        method: str,
        amount: int,
        applications: Sequence[tuple[int, int]] = (),
        reference: str = "",
        now: int,
    ) -> int:
        """Record a payment and apply parts of it to invoices: ``[(invoice_id, amount), ...]``."""
        if method not in PAYMENT_METHODS:
            raise ValueError(f"method must be one of {', '.join(PAYMENT_METHODS)}")
        if amount <= 0 or sum(a for _, a in applications) > amount:
            raise ValueError("a payment is positive and covers at least what it applies")

        def change(conn: Connection) -> int:
            try:
                payment_id: int = conn.execute(
                    insert(t.payments)
                    .values(
                        company_id=company_id,
                        customer_id=customer_id,
                        number=number,
                        currency=currency,
                        received_on=received_on,
                        method=method,
                        reference=reference,
                        amount=amount,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(t.payments.c.id)
                ).scalar_one()
            except sa_exc.IntegrityError:
                raise Conflict(f"payment number {number!r} already exists") from None
            for invoice_id, applied in applications:
                settle_invoice(conn, company_id, customer_id, invoice_id, paid=applied, credited=0, now=now)
                conn.execute(
                    insert(t.payment_applications).values(payment_id=payment_id, invoice_id=invoice_id, amount=applied)
                )
            return payment_id

        payment_id: int = await self.backend.write(change)
        return payment_id

    async def payments(
        self, company_id: int, customer_id: int, *, limit: int = 25, offset: int = 0
    ) -> tuple[list[Payment], int]:
        """One page of a customer's payments, newest first, and how many there are."""

        def query(conn: Connection) -> tuple[list[Payment], int]:
            c = t.payments.c
            where = (c.company_id == company_id, c.customer_id == customer_id)
            rows, total = page_of(
                conn, t.payments, where, (c.received_on.desc(), c.id.desc()), limit=limit, offset=offset
            )
            return [_payment(r) for r in rows], total

        result: tuple[list[Payment], int] = await self.backend.read(query)
        return result

    async def recent_payments(self, company_id: int, customer_id: int, limit: int = 5) -> list[Payment]:
        """The newest payments, without counting them all (for My Account)."""

        def query(conn: Connection) -> list[Payment]:
            c = t.payments.c
            rows = conn.execute(
                select(t.payments)
                .where(c.company_id == company_id, c.customer_id == customer_id)
                .order_by(c.received_on.desc(), c.id.desc())
                .limit(limit)
            ).all()
            return [_payment(r) for r in rows]

        return list(await self.backend.read(query))

    async def payment(self, company_id: int, customer_id: int, payment_id: int) -> Payment | None:
        """One payment with the invoices it paid, only if it is this customer's."""

        def query(conn: Connection) -> Payment | None:
            c = t.payments.c
            row = conn.execute(
                select(t.payments).where(c.id == payment_id, c.company_id == company_id, c.customer_id == customer_id)
            ).first()
            if row is None:
                return None
            pa, inv = t.payment_applications.c, t.invoices.c
            applied = conn.execute(
                select(pa.invoice_id, inv.number, pa.amount)
                .join(t.invoices, inv.id == pa.invoice_id)
                .where(pa.payment_id == payment_id)
                .order_by(inv.number)
            ).all()
            return _payment(row, (PaymentApplication(a.invoice_id, a.number, a.amount) for a in applied))

        payment: Payment | None = await self.backend.read(query)
        return payment

    async def payments_for_invoice(
        self, company_id: int, customer_id: int, invoice_id: int
    ) -> list[tuple[Payment, int]]:
        """The payments applied to one invoice, each with the amount applied to it."""
        return list(
            await self.backend.read(lambda conn: _payments_for_invoice(conn, company_id, customer_id, invoice_id))
        )

    async def invoice_settlements(
        self, company_id: int, customer_id: int, invoice_id: int
    ) -> tuple[list[tuple[Payment, int]], list[CreditNote]]:
        """What settled one invoice: its payments (with the amount applied) and its credit notes."""

        def query(conn: Connection) -> tuple[list[tuple[Payment, int]], list[CreditNote]]:
            c = t.credit_notes.c
            notes = conn.execute(
                select(t.credit_notes)
                .where(
                    c.invoice_id == invoice_id,
                    c.company_id == company_id,
                    c.customer_id == customer_id,
                    c.status == "applied",
                )
                .order_by(c.issued_on, c.id)
            ).all()
            return _payments_for_invoice(conn, company_id, customer_id, invoice_id), [_credit_note(r) for r in notes]

        result: tuple[list[tuple[Payment, int]], list[CreditNote]] = await self.backend.read(query)
        return result

    # -- credit notes ------------------------------------------------------------------

    async def create_credit_note(
        self,
        company_id: int,
        customer_id: int,
        *,
        number: str,
        currency: str,
        issued_on: str,
        lines: Sequence[LineInput],
        invoice_id: int | None = None,
        status: str = "open",
        notes: str = "",
        now: int,
    ) -> int:
        """A credit note: account credit (``open``), or applied to ``invoice_id`` at once."""
        subtotal, discount, tax, total = totals(lines)
        if invoice_id is not None:
            status = "applied"

        def change(conn: Connection) -> int:
            values = {
                "company_id": company_id,
                "customer_id": customer_id,
                "number": number,
                "currency": currency,
                "status": status,
                "issued_on": issued_on,
                "invoice_id": invoice_id,
                "subtotal": subtotal - discount,
                "tax": tax,
                "total": total,
                "notes": notes,
                "created_at": now,
                "updated_at": now,
            }
            note_id = insert_document(conn, t.credit_notes, "credit_note", values, lines)
            if invoice_id is not None:
                settle_invoice(conn, company_id, customer_id, invoice_id, paid=0, credited=total, now=now)
            return note_id

        note_id: int = await self.backend.write(change)
        return note_id

    async def credit_notes(
        self, company_id: int, customer_id: int, *, limit: int = 25, offset: int = 0
    ) -> tuple[list[CreditNote], int]:
        def query(conn: Connection) -> tuple[list[CreditNote], int]:
            c = t.credit_notes.c
            where = visible_to(t.credit_notes, company_id, customer_id)
            rows, total = page_of(
                conn, t.credit_notes, where, (c.issued_on.desc(), c.id.desc()), limit=limit, offset=offset
            )
            return [_credit_note(r) for r in rows], total

        result: tuple[list[CreditNote], int] = await self.backend.read(query)
        return result

    async def credit_note(self, company_id: int, customer_id: int, note_id: int) -> CreditNote | None:
        def query(conn: Connection) -> CreditNote | None:
            row = visible_document(conn, t.credit_notes, note_id, company_id, customer_id)
            return None if row is None else _credit_note(row, _lines(conn, "credit_note", note_id))

        note: CreditNote | None = await self.backend.read(query)
        return note

    async def open_credit(self, company_id: int, customer_id: int) -> int:
        """Credit notes not yet applied to an invoice: they lower the balance due."""

        def query(conn: Connection) -> int:
            c = t.credit_notes.c
            return int(
                conn.execute(
                    select(func.coalesce(func.sum(c.total), 0)).where(
                        c.company_id == company_id, c.customer_id == customer_id, c.status == "open"
                    )
                ).scalar_one()
            )

        credit: int = await self.backend.read(query)
        return credit

    # -- estimates ---------------------------------------------------------------------

    async def create_estimate(
        self,
        company_id: int,
        customer_id: int,
        *,
        number: str,
        currency: str,
        issued_on: str,
        expires_on: str | None,
        lines: Sequence[LineInput],
        status: str = "sent",
        notes: str = "",
        now: int,
    ) -> int:
        subtotal, discount, tax, total = totals(lines)

        def change(conn: Connection) -> int:
            values = {
                "company_id": company_id,
                "customer_id": customer_id,
                "number": number,
                "currency": currency,
                "status": status,
                "issued_on": issued_on,
                "expires_on": expires_on,
                "subtotal": subtotal - discount,
                "tax": tax,
                "total": total,
                "notes": notes,
                "created_at": now,
                "updated_at": now,
            }
            return insert_document(conn, t.estimates, "estimate", values, lines)

        estimate_id: int = await self.backend.write(change)
        return estimate_id

    async def estimates(
        self, company_id: int, customer_id: int, *, limit: int = 25, offset: int = 0
    ) -> tuple[list[Estimate], int]:
        def query(conn: Connection) -> tuple[list[Estimate], int]:
            c = t.estimates.c
            where = visible_to(t.estimates, company_id, customer_id)
            rows, total = page_of(
                conn, t.estimates, where, (c.issued_on.desc(), c.id.desc()), limit=limit, offset=offset
            )
            return [_estimate(r) for r in rows], total

        result: tuple[list[Estimate], int] = await self.backend.read(query)
        return result

    async def estimate(self, company_id: int, customer_id: int, estimate_id: int) -> Estimate | None:
        def query(conn: Connection) -> Estimate | None:
            row = visible_document(conn, t.estimates, estimate_id, company_id, customer_id)
            return None if row is None else _estimate(row, _lines(conn, "estimate", estimate_id))

        estimate: Estimate | None = await self.backend.read(query)
        return estimate

    async def approve_estimate(
        self,
        company_id: int,
        customer_id: int,
        estimate_id: int,
        *,
        approved_by: str,
        now: int,
        valid_on: str | None = None,
    ) -> bool:
        """Approve a sent estimate; False if it cannot be approved (any more).

        With ``valid_on`` (the company's date today), an estimate that expired before it is refused.
        """

        def change(conn: Connection) -> bool:
            c = t.estimates.c
            where = [c.id == estimate_id, c.company_id == company_id, c.customer_id == customer_id, c.status == "sent"]
            if valid_on is not None:
                where.append(or_(c.expires_on.is_(None), c.expires_on >= valid_on))
            result = conn.execute(
                update(t.estimates)
                .where(*where)
                .values(status="approved", approved_by=approved_by, approved_at=now, updated_at=now)
            )
            if not result.rowcount:
                return False
            record_customer_event(
                conn,
                company_id,
                customer_id,
                "estimate.approved",
                {"estimate_id": estimate_id, "by": approved_by},
                now=now,
            )
            return True

        approved: bool = await self.backend.write(change)
        return approved

    # -- balances and statements ---------------------------------------------------------

    async def account_balance(
        self, company_id: int, customer_id: int, currency: str, *, today: str | None = None
    ) -> AccountBalance:
        """What the customer owes now: open invoices less unused credit, and how much is past due (one query)."""
        inv, cn, pay, app = t.invoices.c, t.credit_notes.c, t.payments.c, t.payment_applications.c
        open_invoices = (inv.company_id == company_id, inv.customer_id == customer_id, inv.currency == currency)
        owed = select(func.coalesce(func.sum(inv.balance), 0)).where(*open_invoices, inv.status == "open")
        past_due = owed.where(inv.due_on < today) if today is not None else select(literal(0))
        notes = select(func.coalesce(func.sum(cn.total), 0)).where(
            cn.company_id == company_id, cn.customer_id == customer_id, cn.currency == currency, cn.status == "open"
        )
        received = select(func.coalesce(func.sum(pay.amount), 0)).where(
            pay.company_id == company_id, pay.customer_id == customer_id, pay.currency == currency
        )
        # Applied to an invoice that still counts; what went to a voided one is credit again.
        applied = (
            select(func.coalesce(func.sum(app.amount), 0))
            .join(t.payments, pay.id == app.payment_id)
            .join(t.invoices, inv.id == app.invoice_id)
            .where(pay.company_id == company_id, pay.customer_id == customer_id, pay.currency == currency)
            .where(inv.status.in_(INVOICE_STATUSES), inv.currency == currency)
        )
        parts = [q.scalar_subquery() for q in (owed, past_due, notes, received, applied)]

        def query(conn: Connection) -> AccountBalance:
            o, late, n, r, a = (int(v) for v in conn.execute(select(*parts)).one())
            return AccountBalance(owed=o, past_due=late, unused_credit=n + r - a)

        balance: AccountBalance = await self.backend.read(query)
        return balance

    async def balance_forward_statement(
        self, company_id: int, customer_id: int, currency: str, month: Month, *, today: str
    ) -> BalanceForwardStatement:
        """The month's activity between its opening and closing balances (up to ``today``)."""
        end = min(month.last_day, today)
        ledger = await self.backend.read(lambda conn: load_ledger(conn, company_id, customer_id, currency, end))
        return balance_forward(ledger, month, today)

    async def open_item_statement(
        self, company_id: int, customer_id: int, currency: str, month: Month, *, today: str
    ) -> OpenItemStatement:
        """Invoices owed and credit unused at the month's end (or ``today``, if earlier)."""
        end = min(month.last_day, today)
        ledger = await self.backend.read(lambda conn: load_ledger(conn, company_id, customer_id, currency, end))
        return open_items(ledger, month, today)

    # -- billing details and events -----------------------------------------------------

    async def update_billing_info(self, company_id: int, customer_id: int, values: dict[str, str], *, now: int) -> None:
        """Save the customer's billing contact and address, and tell the company what changed."""
        unknown = set(values) - set(BILLING_FIELDS)
        if unknown:
            raise ValueError(f"not billing fields: {sorted(unknown)}")

        def change(conn: Connection) -> None:
            c = t.customers.c
            before = conn.execute(
                select(*(c[name] for name in values)).where(c.company_id == company_id, c.id == customer_id)
            ).first()
            if before is None:
                raise NotFound("no such customer")
            changed = {k: v for k, v in values.items() if getattr(before, k) != v}
            if not changed:
                return
            conn.execute(
                update(t.customers)
                .where(c.company_id == company_id, c.id == customer_id)
                .values(**changed, updated_at=now)
            )
            record_customer_event(
                conn, company_id, customer_id, "billing_info.updated", {"fields": sorted(changed)}, now=now
            )

        await self.backend.write(change)

    async def customer_events(
        self, company_id: int, *, customer_id: int | None = None, limit: int = 50
    ) -> list[CustomerEvent]:
        def query(conn: Connection) -> list[CustomerEvent]:
            c = t.customer_events.c
            where = [c.company_id == company_id]
            if customer_id is not None:
                where.append(c.customer_id == customer_id)
            rows = conn.execute(select(t.customer_events).where(*where).order_by(c.id.desc()).limit(limit)).all()
            return [CustomerEvent(r.id, r.company_id, r.customer_id, r.at, r.kind, r.detail) for r in rows]

        return list(await self.backend.read(query))
