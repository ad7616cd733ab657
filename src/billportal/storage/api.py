"""The REST API's storage: API keys, idempotent writes, and the documents as the API sees them.

Every function of a ``Connection`` here is scoped by company id: an id of
another company's object finds nothing, exactly like an id that does not exist.
Writes that create something run in one transaction with their idempotency
record (:meth:`ApiStore.write`), so a retried request never makes a second
invoice. Stored responses are sealed (AES-256-GCM under the master key): some
hold a new SSO key or a sign-in link.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import BigInteger, Connection, Row, Table, delete, func, insert, or_, select, update
from sqlalchemy import exc as sa_exc

from billportal.sso.keys import master_key_id
from billportal.storage import schema as t
from billportal.storage.backend import Backend
from billportal.storage.billing import insert_document, insert_lines, settle_invoice, totals
from billportal.storage.errors import Conflict, NotFound
from billportal.storage.records import LineInput

KEY_PREFIX: Final = "bp_live_"
_PREFIX_LENGTH: Final = len(KEY_PREFIX) + 8  # what lists show: "bp_live_ab12CD34"
MAX_KEY_LENGTH: Final = 200
LAST_USED_RESOLUTION: Final = 60  # a key's last-used time is written at most once a minute
IDEMPOTENCY_TTL: Final = 24 * 3600
MAX_AMOUNT: Final = 10**12  # minor units: ten billion dollars is the largest amount anywhere

DOCUMENT_KINDS: Final = ("invoice", "payment", "credit_note", "estimate")
_TABLES: Final[dict[str, Table]] = {
    "customer": t.customers,
    "invoice": t.invoices,
    "payment": t.payments,
    "credit_note": t.credit_notes,
    "estimate": t.estimates,
}
_NUMBER_PREFIXES: Final = {"invoice": "INV", "payment": "PAY", "credit_note": "CN", "estimate": "EST"}


class Refused(Conflict):
    """A write that breaks a rule of the data: ``code`` names the rule, ``field`` the input at fault.

    The API answers each code with its status (:data:`billportal.api.errors.ERROR_CODES`):
    409 when the data as it is now is in the way, 422 when the request itself asks for the impossible.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# -- API keys --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listed: never the key itself, which is stored only as its SHA-256."""

    id: int
    company_id: int
    prefix: str
    name: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just made: ``key`` is shown to its creator once and never again."""

    key: str = field(repr=False)
    info: ApiKeyInfo


@dataclass(frozen=True, slots=True)
class ApiCaller:
    """Whose key signed an API request."""

    company_id: int
    username: str
    key_id: int
    prefix: str

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"api:{self.prefix}"


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _key_info(row: Row[Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        company_id=row.company_id,
        prefix=row.prefix,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


# -- idempotency -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A POST's ``Idempotency-Key`` and what it was sent with."""

    key: str
    method: str
    path: str
    request_hash: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to a write: status and JSON text; ``replayed`` when it is a stored answer."""

    status_code: int
    body: str = field(repr=False)
    replayed: bool = False


_RESPONSE_AD = b"billportal:idempotent-response:company:"


def _seal(master_key: bytes, company_id: int, body: str) -> str:
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(master_key).encrypt(nonce, body.encode("utf-8"), _RESPONSE_AD + str(company_id).encode())
    return f"{master_key_id(master_key)}:{base64.urlsafe_b64encode(sealed).decode('ascii')}"


def _unseal(master_keys: Sequence[bytes], company_id: int, stored: str) -> str | None:
    key_id, _, blob = stored.partition(":")
    for master_key in master_keys:
        if master_key_id(master_key) == key_id:
            sealed = base64.urlsafe_b64decode(blob)
            try:
                plain = AESGCM(master_key).decrypt(sealed[:12], sealed[12:], _RESPONSE_AD + str(company_id).encode())
            except InvalidTag:
                return None
            return plain.decode("utf-8")
    return None


# -- reading objects ---------------------------------------------------------------------


def _plain(row: Row[Any]) -> dict[str, Any]:
    values = dict(row._mapping)
    values.pop("company_id", None)
    return values


def _lines_of(conn: Connection, kind: str, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return found
    li = t.line_items.c
    rows = conn.execute(
        select(t.line_items)
        .where(li.document_kind == kind, li.document_id.in_(ids))
        .order_by(li.document_id, li.position)
    ).all()
    for r in rows:
        found[r.document_id].append(
            {
                "position": r.position,
                "description": r.description,
                "quantity": r.quantity,
                "unit_price": r.unit_price,
                "discount": r.discount,
                "tax": r.tax,
                "amount": r.amount,
            }
        )
    return found


def _applications_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return found
    pa = t.payment_applications.c
    rows = conn.execute(
        select(pa.payment_id, pa.invoice_id, pa.amount).where(pa.payment_id.in_(ids)).order_by(pa.invoice_id)
    ).all()
    for r in rows:
        found[r.payment_id].append({"invoice_id": r.invoice_id, "amount": r.amount})
    return found


def _complete(conn: Connection, kind: str, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Rows as plain objects, with their lines (documents) or applications (payments)."""
    objects = [{**_plain(r), "object": kind} for r in rows]
    ids = [o["id"] for o in objects]
    if kind == "payment":
        applications = _applications_of(conn, ids)
        for o in objects:
            o["applications"] = applications[o["id"]]
            o["unapplied"] = o["amount"] - sum(a["amount"] for a in o["applications"])
    elif kind in DOCUMENT_KINDS:
        lines = _lines_of(conn, kind, ids)
        for o in objects:
            o["lines"] = lines[o["id"]]
    return objects


def _largest_id(table: Table) -> int:
    """The largest id the table's id column holds (PostgreSQL refuses to even compare a larger one)."""
    return 2**63 - 1 if isinstance(table.c.id.type, BigInteger) else 2**31 - 1


def fetch(conn: Connection, kind: str, company_id: int, object_id: int) -> dict[str, Any] | None:
    """One object of the company, or None (also when it belongs to another company)."""
    table = _TABLES[kind]
    if not 0 < object_id <= _largest_id(table):
        return None
    row = conn.execute(select(table).where(table.c.company_id == company_id, table.c.id == object_id)).first()
    return None if row is None else _complete(conn, kind, [row])[0]


def _fetch_or_404(conn: Connection, kind: str, company_id: int, object_id: int) -> dict[str, Any]:
    found = fetch(conn, kind, company_id, object_id)
    if found is None:
        raise NotFound(f"no such {kind.replace('_', ' ')}")
    return found


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list, oldest first: ``last_id`` is where the next page starts after."""

    data: list[dict[str, Any]]
    has_more: bool

    @property
    def last_id(self) -> int | None:
        return int(self.data[-1]["id"]) if self.data else None


def page(
    conn: Connection,
    kind: str,
    company_id: int,
    *,
    limit: int,
    after_id: int | None = None,
    updated_after: int | None = None,
    customer_id: int | None = None,
    status: str | None = None,
) -> Page:
    """Objects in id order from ``after_id`` on (keyset pagination: a page costs the same at any depth)."""
    table = _TABLES[kind]
    c = table.c
    where = [c.company_id == company_id]
    if after_id is not None:
        if after_id >= _largest_id(table):
            return Page([], False)
        where.append(c.id > after_id)
    if updated_after is not None:
        where.append(c.updated_at > updated_after)
    if customer_id is not None and kind != "customer":
        where.append(c.customer_id == customer_id)
    if status is not None and "status" in c:
        where.append(c.status == status)
    rows = conn.execute(select(table).where(*where).order_by(c.id).limit(limit + 1)).all()
    return Page(_complete(conn, kind, rows[:limit]), len(rows) > limit)


# -- customers ------------------------------------------------------------------------------


def _customer_currency(conn: Connection, company_id: int, customer_id: int) -> str:
    c = t.customers.c
    currency = conn.execute(select(c.currency).where(c.company_id == company_id, c.id == customer_id)).scalar()
    if currency is None:
        raise Refused("customer_not_found", "no customer has this id", "customer_id")
    return str(currency)


def _document_currency(conn: Connection, company_id: int, values: Mapping[str, Any]) -> str:
    """The document's customer must exist; its currency is the customer's unless given."""
    customer_currency = _customer_currency(conn, company_id, values["customer_id"])
    return str(values.get("currency") or customer_currency)


def create_customer(conn: Connection, company_id: int, values: Mapping[str, Any], now: int) -> dict[str, Any]:
    """A new customer; its id is the next free one unless ``values`` names it."""
    c = t.customers.c
    fields = dict(values)
    customer_id = fields.pop("id", None)
    if customer_id is None:
        highest = conn.execute(select(func.max(c.id)).where(c.company_id == company_id)).scalar()
        customer_id = (highest or 0) + 1
    elif conn.execute(select(c.id).where(c.company_id == company_id, c.id == customer_id)).first() is not None:
        raise Refused("customer_exists", f"customer {customer_id} already exists", "id")
    if not fields.get("number"):
        fields["number"] = f"CUST-{customer_id:05d}"
    conn.execute(
        insert(t.customers).values(company_id=company_id, id=customer_id, created_at=now, updated_at=now, **fields)
    )
    return _fetch_or_404(conn, "customer", company_id, customer_id)


def update_customer(
    conn: Connection, company_id: int, customer_id: int, values: Mapping[str, Any], now: int
) -> dict[str, Any]:
    _fetch_or_404(conn, "customer", company_id, customer_id)
    c = t.customers.c
    if values:
        conn.execute(
            update(t.customers).where(c.company_id == company_id, c.id == customer_id).values(**values, updated_at=now)
        )
    return _fetch_or_404(conn, "customer", company_id, customer_id)


def delete_customer(conn: Connection, company_id: int, customer_id: int) -> dict[str, Any]:
    """Delete a customer that has no documents (documents are never deleted with their customer)."""
    customer = _fetch_or_404(conn, "customer", company_id, customer_id)
    for kind in DOCUMENT_KINDS:
        table = _TABLES[kind]
        if conn.execute(
            select(table.c.id).where(table.c.company_id == company_id, table.c.customer_id == customer_id).limit(1)
        ).first():
            raise Refused(
                "customer_has_documents",
                f"the customer has {kind.replace('_', ' ')}s; void or delete them first, or keep the customer",
            )
    c = t.customers.c
    conn.execute(delete(t.customers).where(c.company_id == company_id, c.id == customer_id))
    return customer


# -- documents ----------------------------------------------------------------------------


def _next_number(conn: Connection, kind: str, company_id: int) -> str:
    table = _TABLES[kind]
    c = table.c
    count = conn.execute(select(func.count()).select_from(table).where(c.company_id == company_id)).scalar_one()
    n = int(count) + 1
    while conn.execute(
        select(c.id).where(c.company_id == company_id, c.number == f"{_NUMBER_PREFIXES[kind]}-{n:05d}")
    ).first():
        n += 1
    return f"{_NUMBER_PREFIXES[kind]}-{n:05d}"


def _check_number_free(conn: Connection, kind: str, company_id: int, number: str, own_id: int | None = None) -> None:
    c = _TABLES[kind].c
    where = [c.company_id == company_id, c.number == number]
    if own_id is not None:
        where.append(c.id != own_id)
    if conn.execute(select(c.id).where(*where)).first() is not None:
        raise Refused("number_taken", f"another {kind.replace('_', ' ')} has number {number[:64]!r}", "number")


def line_inputs(lines: Sequence[Mapping[str, Any]]) -> list[LineInput]:
    """Validated line dicts as the storage layer's line inputs; every amount within bounds."""
    result = []
    for index, line in enumerate(lines):
        item = LineInput(
            description=line["description"],
            quantity=line["quantity"],
            unit_price=line["unit_price"],
            discount=line.get("discount", 0),
            tax=line.get("tax", 0),
        )
        gross = Decimal(item.quantity) * item.unit_price
        if gross > MAX_AMOUNT:
            raise Refused("amount_too_large", f"quantity times unit price is above {MAX_AMOUNT}", f"lines[{index}]")
        if item.amount < 0:
            raise Refused(
                "discount_too_large",
                "the discount is larger than quantity times unit price",
                f"lines[{index}].discount",
            )
        result.append(item)
    return result


def _check_dates(first: str | None, then: str | None, field_name: str) -> None:
    if first is not None and then is not None and then < first:
        raise Refused("date_order", f"{field_name} is before issued_on", field_name)


def _replace_lines(conn: Connection, kind: str, document_id: int, lines: Sequence[LineInput]) -> None:
    li = t.line_items.c
    conn.execute(delete(t.line_items).where(li.document_kind == kind, li.document_id == document_id))
    insert_lines(conn, kind, document_id, lines)


def create_invoice(conn: Connection, company_id: int, values: Mapping[str, Any], now: int) -> dict[str, Any]:
    customer_id = values["customer_id"]
    currency = _document_currency(conn, company_id, values)
    number = values.get("number") or _next_number(conn, "invoice", company_id)
    _check_number_free(conn, "invoice", company_id, number)
    _check_dates(values["issued_on"], values.get("due_on"), "due_on")
    lines = line_inputs(values["lines"])
    subtotal, discount, tax, total = totals(lines)
    invoice_id = insert_document(
        conn,
        t.invoices,
        "invoice",
        {
            "company_id": company_id,
            "customer_id": customer_id,
            "number": number,
            "currency": currency,
            "status": values.get("status", "open"),
            "issued_on": values["issued_on"],
            "due_on": values.get("due_on"),
            "subtotal": subtotal,
            "discount": discount,
            "tax": tax,
            "total": total,
            "amount_paid": 0,
            "amount_credited": 0,
            "balance": total,
            "notes": values.get("notes", ""),
            "created_at": now,
            "updated_at": now,
        },
        lines,
    )
    return _fetch_or_404(conn, "invoice", company_id, invoice_id)


def update_invoice(
    conn: Connection, company_id: int, invoice_id: int, values: Mapping[str, Any], now: int
) -> dict[str, Any]:
    """Change an invoice. Paid and voided invoices keep all but their notes; lines change only while unpaid."""
    invoice = _fetch_or_404(conn, "invoice", company_id, invoice_id)
    status = invoice["status"]
    if status in ("paid", "voided") and set(values) - {"notes"}:
        raise Refused("invoice_not_editable", f"a {status} invoice can only have its notes changed")
    changes: dict[str, Any] = {k: v for k, v in values.items() if k != "lines"}
    new_status = values.get("status", status)
    if new_status != status and not (status == "draft" and new_status == "open"):
        raise Refused("invalid_status_change", f"an invoice cannot go from {status} to {new_status}", "status")
    if "currency" in values and values["currency"] != invoice["currency"] and status != "draft":
        raise Refused("invoice_not_editable", "only a draft invoice can change its currency", "currency")
    if "number" in values:
        _check_number_free(conn, "invoice", company_id, values["number"], invoice_id)
    _check_dates(values.get("issued_on", invoice["issued_on"]), values.get("due_on", invoice["due_on"]), "due_on")
    if "lines" in values:
        if invoice["amount_paid"] or invoice["amount_credited"]:
            raise Refused("invoice_not_editable", "the lines of an invoice with payments or credits are fixed", "lines")
        lines = line_inputs(values["lines"])
        subtotal, discount, tax, total = totals(lines)
        changes.update(subtotal=subtotal, discount=discount, tax=tax, total=total, balance=total)
        _replace_lines(conn, "invoice", invoice_id, lines)
    c = t.invoices.c
    conn.execute(update(t.invoices).where(c.id == invoice_id).values(**changes, updated_at=now))
    return _fetch_or_404(conn, "invoice", company_id, invoice_id)


def _delete_draft(conn: Connection, kind: str, company_id: int, document_id: int) -> dict[str, Any]:
    document = _fetch_or_404(conn, kind, company_id, document_id)
    if document["status"] != "draft":
        raise Refused("not_a_draft", f"only drafts are deleted; void this {kind.replace('_', ' ')} instead")
    li = t.line_items.c
    conn.execute(delete(t.line_items).where(li.document_kind == kind, li.document_id == document_id))
    table = _TABLES[kind]
    conn.execute(delete(table).where(table.c.id == document_id))
    return document


def delete_invoice(conn: Connection, company_id: int, invoice_id: int) -> dict[str, Any]:
    return _delete_draft(conn, "invoice", company_id, invoice_id)


def void_invoice(conn: Connection, company_id: int, invoice_id: int, now: int) -> dict[str, Any]:
    """Void an open invoice that nothing has been paid or credited on: it is owed no more."""
    invoice = _fetch_or_404(conn, "invoice", company_id, invoice_id)
    if invoice["status"] != "open":
        raise Refused("not_voidable", f"a {invoice['status']} invoice cannot be voided (only open ones)")
    if invoice["amount_paid"] or invoice["amount_credited"]:
        raise Refused("not_voidable", "delete the payments and void the credit notes applied to it first")
    c = t.invoices.c
    conn.execute(update(t.invoices).where(c.id == invoice_id).values(status="voided", balance=0, updated_at=now))
    return _fetch_or_404(conn, "invoice", company_id, invoice_id)


def _open_invoice(conn: Connection, company_id: int, customer_id: int, invoice_id: int, field_name: str) -> Row[Any]:
    c = t.invoices.c
    if invoice_id > _largest_id(t.invoices):
        raise Refused("invoice_not_open", "this is not an open invoice of the customer", field_name)
    row = conn.execute(
        select(t.invoices).where(c.id == invoice_id, c.company_id == company_id, c.customer_id == customer_id)
    ).first()
    if row is None or row.status != "open":
        raise Refused("invoice_not_open", "this is not an open invoice of the customer", field_name)
    return row


def create_payment(conn: Connection, company_id: int, values: Mapping[str, Any], now: int) -> dict[str, Any]:
    """A payment received, applied at once to the invoices it lists."""
    customer_id = values["customer_id"]
    currency = _document_currency(conn, company_id, values)
    number = values.get("number") or _next_number(conn, "payment", company_id)
    _check_number_free(conn, "payment", company_id, number)
    applications = values.get("applications", [])
    if sum(a["amount"] for a in applications) > values["amount"]:
        raise Refused("overapplied", "the applications add up to more than the payment", "applications")
    seen: set[int] = set()
    for index, application in enumerate(applications):
        where = f"applications[{index}]"
        if application["invoice_id"] in seen:
            raise Refused("duplicate_invoice", "an invoice is listed twice", f"{where}.invoice_id")
        seen.add(application["invoice_id"])
        invoice = _open_invoice(conn, company_id, customer_id, application["invoice_id"], f"{where}.invoice_id")
        if invoice.currency != currency:
            raise Refused("currency_mismatch", "the invoice is in another currency", f"{where}.invoice_id")
        if application["amount"] > invoice.balance:
            raise Refused("amount_exceeds_balance", "more than the invoice's balance", f"{where}.amount")
    payment_id = conn.execute(
        insert(t.payments)
        .values(
            company_id=company_id,
            customer_id=customer_id,
            number=number,
            currency=currency,
            received_on=values["received_on"],
            method=values["method"],
            reference=values.get("reference", ""),
            amount=values["amount"],
            created_at=now,
            updated_at=now,
        )
        .returning(t.payments.c.id)
    ).scalar_one()
    for application in applications:
        settle_invoice(
            conn, company_id, customer_id, application["invoice_id"], paid=application["amount"], credited=0, now=now
        )
        conn.execute(
            insert(t.payment_applications).values(
                payment_id=payment_id, invoice_id=application["invoice_id"], amount=application["amount"]
            )
        )
    return _fetch_or_404(conn, "payment", company_id, payment_id)


def update_payment(
    conn: Connection, company_id: int, payment_id: int, values: Mapping[str, Any], now: int
) -> dict[str, Any]:
    """Change a payment's details (not its amount: delete it and record it again)."""
    _fetch_or_404(conn, "payment", company_id, payment_id)
    if "number" in values:
        _check_number_free(conn, "payment", company_id, values["number"], payment_id)
    c = t.payments.c
    conn.execute(update(t.payments).where(c.id == payment_id).values(**values, updated_at=now))
    return _fetch_or_404(conn, "payment", company_id, payment_id)


def _unsettle(conn: Connection, invoice_id: int, *, paid: int, credited: int, now: int) -> None:
    """Give back what a payment or a credit took off an invoice's balance."""
    c = t.invoices.c
    row = conn.execute(select(c.status).where(c.id == invoice_id)).one()
    conn.execute(
        update(t.invoices)
        .where(c.id == invoice_id)
        .values(
            amount_paid=c.amount_paid - paid,
            amount_credited=c.amount_credited - credited,
            balance=c.balance + paid + credited,
            status="open" if row.status == "paid" else row.status,
            updated_at=now,
        )
    )


def delete_payment(conn: Connection, company_id: int, payment_id: int, now: int) -> dict[str, Any]:
    """Delete a payment (recorded by mistake, or bounced): the invoices it paid are owed again."""
    payment = _fetch_or_404(conn, "payment", company_id, payment_id)
    for application in payment["applications"]:
        _unsettle(conn, application["invoice_id"], paid=application["amount"], credited=0, now=now)
    pa = t.payment_applications.c
    conn.execute(delete(t.payment_applications).where(pa.payment_id == payment_id))
    conn.execute(delete(t.payments).where(t.payments.c.id == payment_id))
    return payment


def create_credit_note(conn: Connection, company_id: int, values: Mapping[str, Any], now: int) -> dict[str, Any]:
    """A credit note: account credit, or applied to ``invoice_id`` at once."""
    customer_id = values["customer_id"]
    currency = _document_currency(conn, company_id, values)
    number = values.get("number") or _next_number(conn, "credit_note", company_id)
    _check_number_free(conn, "credit_note", company_id, number)
    lines = line_inputs(values["lines"])
    subtotal, discount, tax, total = totals(lines)
    invoice_id = values.get("invoice_id")
    status = values.get("status", "open")
    if invoice_id is not None:
        invoice = _open_invoice(conn, company_id, customer_id, invoice_id, "invoice_id")
        if invoice.currency != currency:
            raise Refused("currency_mismatch", "the invoice is in another currency", "invoice_id")
        if total > invoice.balance or total <= 0:
            raise Refused(
                "amount_exceeds_balance",
                "the credit must be more than 0 and at most the balance",
                "lines",
            )
        if status == "draft":
            raise Refused("invalid_status", "a credit note applied to an invoice is not a draft", "status")
        status = "applied"
    note_id = insert_document(
        conn,
        t.credit_notes,
        "credit_note",
        {
            "company_id": company_id,
            "customer_id": customer_id,
            "number": number,
            "currency": currency,
            "status": status,
            "issued_on": values["issued_on"],
            "invoice_id": invoice_id,
            "subtotal": subtotal - discount,
            "tax": tax,
            "total": total,
            "notes": values.get("notes", ""),
            "created_at": now,
            "updated_at": now,
        },
        lines,
    )
    if invoice_id is not None:
        settle_invoice(conn, company_id, customer_id, invoice_id, paid=0, credited=total, now=now)
    return _fetch_or_404(conn, "credit_note", company_id, note_id)


def update_credit_note(
    conn: Connection, company_id: int, note_id: int, values: Mapping[str, Any], now: int
) -> dict[str, Any]:
    """Change a credit note: its lines and status only while it is a draft."""
    note = _fetch_or_404(conn, "credit_note", company_id, note_id)
    if note["status"] == "voided" and set(values) - {"notes"}:
        raise Refused("credit_note_not_editable", "a voided credit note can only have its notes changed")
    changes: dict[str, Any] = {k: v for k, v in values.items() if k != "lines"}
    new_status = values.get("status", note["status"])
    if new_status != note["status"] and not (note["status"] == "draft" and new_status == "open"):
        raise Refused(
            "invalid_status_change", f"a credit note cannot go from {note['status']} to {new_status}", "status"
        )
    if ("lines" in values or "currency" in values) and note["status"] != "draft":
        raise Refused("credit_note_not_editable", "only a draft's lines and currency can change", "lines")
    if "number" in values:
        _check_number_free(conn, "credit_note", company_id, values["number"], note_id)
    if "lines" in values:
        lines = line_inputs(values["lines"])
        subtotal, discount, tax, total = totals(lines)
        changes.update(subtotal=subtotal - discount, tax=tax, total=total)
        _replace_lines(conn, "credit_note", note_id, lines)
    c = t.credit_notes.c
    conn.execute(update(t.credit_notes).where(c.id == note_id).values(**changes, updated_at=now))
    return _fetch_or_404(conn, "credit_note", company_id, note_id)


def delete_credit_note(conn: Connection, company_id: int, note_id: int) -> dict[str, Any]:
    return _delete_draft(conn, "credit_note", company_id, note_id)


def void_credit_note(conn: Connection, company_id: int, note_id: int, now: int) -> dict[str, Any]:
    """Void a credit note; one applied to an invoice gives the invoice its balance back."""
    note = _fetch_or_404(conn, "credit_note", company_id, note_id)
    if note["status"] not in ("open", "applied"):
        raise Refused("not_voidable", f"a {note['status']} credit note cannot be voided")
    if note["status"] == "applied" and note["invoice_id"] is not None:
        _unsettle(conn, note["invoice_id"], paid=0, credited=note["total"], now=now)
    c = t.credit_notes.c
    conn.execute(update(t.credit_notes).where(c.id == note_id).values(status="voided", updated_at=now))
    return _fetch_or_404(conn, "credit_note", company_id, note_id)


def create_estimate(conn: Connection, company_id: int, values: Mapping[str, Any], now: int) -> dict[str, Any]:
    customer_id = values["customer_id"]
    currency = _document_currency(conn, company_id, values)
    number = values.get("number") or _next_number(conn, "estimate", company_id)
    _check_number_free(conn, "estimate", company_id, number)
    _check_dates(values["issued_on"], values.get("expires_on"), "expires_on")
    lines = line_inputs(values["lines"])
    subtotal, discount, tax, total = totals(lines)
    estimate_id = insert_document(
        conn,
        t.estimates,
        "estimate",
        {
            "company_id": company_id,
            "customer_id": customer_id,
            "number": number,
            "currency": currency,
            "status": values.get("status", "sent"),
            "issued_on": values["issued_on"],
            "expires_on": values.get("expires_on"),
            "subtotal": subtotal - discount,
            "tax": tax,
            "total": total,
            "notes": values.get("notes", ""),
            "created_at": now,
            "updated_at": now,
        },
        lines,
    )
    return _fetch_or_404(conn, "estimate", company_id, estimate_id)


_ESTIMATE_MOVES: Final = {("draft", "sent"), ("sent", "draft"), ("sent", "declined"), ("declined", "sent")}


def update_estimate(
    conn: Connection, company_id: int, estimate_id: int, values: Mapping[str, Any], now: int
) -> dict[str, Any]:
    """Change an estimate; an approved or voided one keeps all but its notes."""
    estimate = _fetch_or_404(conn, "estimate", company_id, estimate_id)
    status = estimate["status"]
    if status in ("approved", "voided") and set(values) - {"notes"}:
        raise Refused("estimate_not_editable", f"an {status} estimate can only have its notes changed")
    new_status = values.get("status", status)
    if new_status != status and (status, new_status) not in _ESTIMATE_MOVES:
        raise Refused("invalid_status_change", f"an estimate cannot go from {status} to {new_status}", "status")
    if "number" in values:
        _check_number_free(conn, "estimate", company_id, values["number"], estimate_id)
    _check_dates(
        values.get("issued_on", estimate["issued_on"]), values.get("expires_on", estimate["expires_on"]), "expires_on"
    )
    changes: dict[str, Any] = {k: v for k, v in values.items() if k != "lines"}
    if "lines" in values:
        lines = line_inputs(values["lines"])
        subtotal, discount, tax, total = totals(lines)
        changes.update(subtotal=subtotal - discount, tax=tax, total=total)
        _replace_lines(conn, "estimate", estimate_id, lines)
    c = t.estimates.c
    conn.execute(update(t.estimates).where(c.id == estimate_id).values(**changes, updated_at=now))
    return _fetch_or_404(conn, "estimate", company_id, estimate_id)


def delete_estimate(conn: Connection, company_id: int, estimate_id: int) -> dict[str, Any]:
    return _delete_draft(conn, "estimate", company_id, estimate_id)


def void_estimate(conn: Connection, company_id: int, estimate_id: int, now: int) -> dict[str, Any]:
    estimate = _fetch_or_404(conn, "estimate", company_id, estimate_id)
    if estimate["status"] in ("draft", "voided"):
        raise Refused("not_voidable", f"a {estimate['status']} estimate cannot be voided")
    c = t.estimates.c
    conn.execute(update(t.estimates).where(c.id == estimate_id).values(status="voided", updated_at=now))
    return _fetch_or_404(conn, "estimate", company_id, estimate_id)


# -- the store ---------------------------------------------------------------------------------


Change = Callable[[Connection], tuple[int, str]]


class ApiStore:
    """API keys and idempotent writes (``store.api``); the dashboard and the CLI manage keys here."""

    def __init__(self, backend: Backend, master_keys: Sequence[bytes]) -> None:
        self.backend = backend
        self._master_keys = tuple(master_keys)

    # -- keys

    async def create_key(self, company_id: int, name: str, *, now: int) -> NewApiKey:
        """Make a key for the company; the plaintext is in the answer, and only its hash is stored."""

        key = KEY_PREFIX + secrets.token_urlsafe(30)

        def change(conn: Connection) -> NewApiKey:
            key_id = conn.execute(
                insert(t.api_keys)
                .values(
                    company_id=company_id,
                    prefix=key[:_PREFIX_LENGTH],
                    key_hash=hash_key(key),
                    name=name,
                    created_at=now,
                )
                .returning(t.api_keys.c.id)
            ).scalar_one()
            row = conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).one()
            return NewApiKey(key, _key_info(row))

        created: NewApiKey = await self.backend.write(change)
        return created

    async def list_keys(self, company_id: int, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
        """The company's keys, newest first."""

        def query(conn: Connection) -> list[ApiKeyInfo]:
            c = t.api_keys.c
            where = [c.company_id == company_id]
            if not include_revoked:
                where.append(c.revoked_at.is_(None))
            return [_key_info(r) for r in conn.execute(select(t.api_keys).where(*where).order_by(c.id.desc()))]

        return list(await self.backend.read(query))

    async def revoke_key(self, company_id: int, key_id_or_prefix: int | str, *, now: int) -> ApiKeyInfo | None:
        """Revoke a key at once (by id or by its shown prefix); None if the company has no such live key."""

        def change(conn: Connection) -> ApiKeyInfo | None:
            c = t.api_keys.c
            which = c.id == key_id_or_prefix if isinstance(key_id_or_prefix, int) else c.prefix == key_id_or_prefix
            row = conn.execute(
                select(t.api_keys).where(c.company_id == company_id, which, c.revoked_at.is_(None))
            ).first()
            if row is None:
                return None
            conn.execute(update(t.api_keys).where(c.id == row.id).values(revoked_at=now))
            return _key_info(conn.execute(select(t.api_keys).where(c.id == row.id)).one())

        revoked: ApiKeyInfo | None = await self.backend.write(change)
        return revoked

    async def authenticate(self, presented: str, *, now: int) -> ApiCaller | None:
        """The caller a presented key belongs to, or None (unknown, malformed or revoked, alike)."""
        if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_LENGTH:
            return None
        digest = hash_key(presented)

        def query(conn: Connection) -> Any:
            k, co = t.api_keys.c, t.companies.c
            return conn.execute(
                select(k.id, k.company_id, k.prefix, k.last_used_at, co.username)
                .join(t.companies, co.id == k.company_id)
                .where(k.key_hash == digest, k.revoked_at.is_(None))
            ).first()

        row = await self.backend.read(query)
        if row is None:
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            key_id = row.id

            def touch(conn: Connection) -> None:
                conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=now))

            await self.backend.write(touch)
        return ApiCaller(company_id=row.company_id, username=row.username, key_id=row.id, prefix=row.prefix)

    # -- reads and writes

    async def read(self, query: Callable[[Connection], Any]) -> Any:
        return await self.backend.read(query)

    def _stored(self, conn: Connection, company_id: int, key: Idempotency, now: int) -> Outcome | None:
        c = t.idempotency_keys.c
        row = conn.execute(select(t.idempotency_keys).where(c.company_id == company_id, c.key == key.key)).first()
        if row is None or row.created_at <= now - IDEMPOTENCY_TTL:
            return None
        if (row.method, row.path, bytes(row.request_hash)) != (key.method, key.path, key.request_hash):
            raise Refused(
                "idempotency_key_reused",
                "this Idempotency-Key came before with another request; use a new key for a new request",
                "Idempotency-Key",
            )
        body = _unseal(self._master_keys, company_id, row.response_body)
        if body is None:
            raise Refused("idempotency_key_reused", "the stored answer cannot be read any more; use a new key")
        return Outcome(row.status_code, body, replayed=True)

    def _store(self, conn: Connection, company_id: int, key: Idempotency, outcome: Outcome, now: int) -> None:
        c = t.idempotency_keys.c
        # Expired records go: this company's, and the one this key may still have.
        conn.execute(
            delete(t.idempotency_keys).where(
                c.company_id == company_id, or_(c.created_at <= now - IDEMPOTENCY_TTL, c.key == key.key)
            )
        )
        conn.execute(
            insert(t.idempotency_keys).values(
                company_id=company_id,
                key=key.key,
                method=key.method,
                path=key.path,
                request_hash=key.request_hash,
                status_code=outcome.status_code,
                response_body=_seal(self._master_keys[0], company_id, outcome.body),
                created_at=now,
            )
        )

    async def write(self, company_id: int, change: Change, *, idempotency: Idempotency | None, now: int) -> Outcome:
        """Run ``change`` (which answers status and JSON text); with a key, exactly once.

        The same key with the same request gives the stored answer again; with
        another request it is refused. The record is written in the same
        transaction as whatever ``change`` writes.
        """
        if idempotency is None:
            status, body = await self.backend.write(change)
            return Outcome(status, body)
        key = idempotency

        def once(conn: Connection) -> Outcome:
            stored = self._stored(conn, company_id, key, now)
            if stored is not None:
                return stored
            status, body = change(conn)
            outcome = Outcome(status, body)
            self._store(conn, company_id, key, outcome, now)
            return outcome

        try:
            outcome: Outcome = await self.backend.write(once)
        except sa_exc.IntegrityError:
            # A concurrent request with this key committed first: answer as it was answered.
            outcome = await self.backend.write(once)
        return outcome

    async def replay(self, company_id: int, key: Idempotency, *, now: int) -> Outcome | None:
        """The stored answer for ``key``, if any (for writes that run in their own transactions)."""
        outcome: Outcome | None = await self.backend.read(lambda conn: self._stored(conn, company_id, key, now))
        return outcome

    async def record(self, company_id: int, key: Idempotency, outcome: Outcome, *, now: int) -> None:
        """Store the answer of a write that ran in its own transaction (SSO key changes)."""
        await self.backend.write(lambda conn: self._store(conn, company_id, key, outcome, now))


def encode_json(value: Any) -> str:
    """JSON text as the API sends it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
