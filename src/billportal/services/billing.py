"""The one write model for customers and their documents: every change to billing data goes through :class:`Books`.

The REST API, the portal's actions, the dashboard, the CLI, the demo and the
tests' factories all change customers, invoices, payments, credit notes and
estimates through :class:`Books`, which owns numbering, currencies, status
moves, totals, settlement, voiding and credits. Nothing can make a state that
the API would refuse.

A :class:`Books` lives for one transaction (``Books(conn, company_id, now)``);
:class:`Billing` opens the transaction for callers that need nothing else in
it. Money is safe when several processes write at once: the rows a change
depends on are locked first (``SELECT ... FOR UPDATE`` on PostgreSQL, in id
order; SQLite writes one at a time), and an invoice's balance only moves through
a conditional update that checks it (:func:`billportal.storage.documents.settle`).
A rule that is broken raises :class:`~billportal.core.errors.Refused` with a
stable code, and the transaction changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar

from sqlalchemy import Connection
from sqlalchemy import Row as SqlRow

from billportal.core import countries, i18n
from billportal.core.bounds import MAX_AMOUNT, MAX_ID, TAX_ID, storable_text
from billportal.core.errors import NotFound, Refused
from billportal.services import events, mail, statements
from billportal.storage import companies, customer_lists, documents, refunds
from billportal.storage import schema as t
from billportal.storage import webhooks as outbox
from billportal.storage.bounds import check_row
from billportal.storage.documents import Scope
from billportal.storage.records import (
    CreditNote,
    Customer,
    CustomerEvent,
    CustomerPage,
    Estimate,
    Invoice,
    Ledger,
    LineItem,
    Payment,
    Refund,
)
from billportal.storage.store import Store

T = TypeVar("T")
StatementKind = Literal["balance-forward", "open-item"]
Statement = statements.BalanceForwardStatement | statements.OpenItemStatement

NUMBER_PREFIXES: Final = {"invoice": "INV", "payment": "PAY", "credit_note": "CN", "estimate": "EST"}
PAYMENT_METHODS: Final = ("ach", "bank_transfer", "card", "cash", "check", "other")
REFUND_SOURCES: Final = ("dashboard", "api", "gateway")
MAX_LINES: Final = 100
CUSTOMER_FIELDS: Final = (
    "number",
    "name",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "tax_id",
    "currency",
)
BILLING_FIELDS: Final = CUSTOMER_FIELDS[1:-1]  # what a customer may change in the portal: not number or currency
_INVOICE_FIELDS: Final = ("number", "currency", "status", "issued_on", "due_on", "notes")
_PAYMENT_FIELDS: Final = ("number", "received_on", "method", "reference")
_CREDIT_NOTE_FIELDS: Final = ("number", "currency", "status", "issued_on", "notes")
_ESTIMATE_FIELDS: Final = ("number", "currency", "status", "issued_on", "expires_on", "notes")
_ESTIMATE_MOVES: Final = {("draft", "sent"), ("sent", "draft"), ("sent", "declined"), ("declined", "sent")}
_CURRENCY: Final = re.compile(r"[A-Z]{3}")
_QUANTITY: Final = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")


# -- lines and totals ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineInput:
    """One line of a document as it is given: its amount is worked out."""

    description: str
    quantity: str  # a decimal string: "2", "1.5"
    unit_price: int
    discount: int = 0
    tax: int = 0

    @property
    def gross(self) -> int:
        """Quantity times unit price, rounded half to even to whole minor units."""
        return int((Decimal(self.quantity) * self.unit_price).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    @property
    def amount(self) -> int:
        return self.gross - self.discount + self.tax

    @classmethod
    def of(cls, line: LineInput | Mapping[str, Any]) -> LineInput:
        if isinstance(line, LineInput):
            return line
        return cls(
            line["description"], line["quantity"], line["unit_price"], line.get("discount", 0), line.get("tax", 0)
        )


@dataclass(frozen=True, slots=True)
class Totals:
    """What some lines come to, in minor units: ``subtotal - discount + tax = total``."""

    subtotal: int
    discount: int
    tax: int
    total: int

    def columns(self, kind: str) -> dict[str, int]:
        """The document's total columns: invoices keep the discount apart, credit notes and estimates net of it."""
        if kind == "invoice":
            return {"subtotal": self.subtotal, "discount": self.discount, "tax": self.tax, "total": self.total}
        return {"subtotal": self.subtotal - self.discount, "tax": self.tax, "total": self.total}


def _amount(value: Any, field: str, minimum: int = 0) -> int:
    if type(value) is not int or not minimum <= value <= MAX_AMOUNT:
        raise Refused(
            "invalid_field", f"{field} must be a whole number of minor units from {minimum} to {MAX_AMOUNT}", field
        )
    return value


def priced(lines: Sequence[LineInput | Mapping[str, Any]]) -> tuple[list[LineItem], Totals]:
    """Lines numbered from 1 with their amounts, and their totals; each amount and the totals within bounds."""
    if not 1 <= len(lines) <= MAX_LINES:
        raise Refused("invalid_field", f"a document has 1 to {MAX_LINES} lines", "lines")
    items: list[LineItem] = []
    for index, raw in enumerate(lines):
        where = f"lines[{index}]"
        line = LineInput.of(raw)
        if not isinstance(line.quantity, str) or not _QUANTITY.fullmatch(line.quantity):
            raise Refused(
                "invalid_field", f'{where}.quantity must be a decimal number such as "2" or "1.5"', f"{where}.quantity"
            )
        if not isinstance(line.description, str) or not line.description.strip():
            raise Refused("invalid_field", f"{where}.description must say what the line is for", f"{where}.description")
        for name in ("unit_price", "discount", "tax"):
            _amount(getattr(line, name), f"{where}.{name}")
        if Decimal(line.quantity) * line.unit_price > MAX_AMOUNT:
            raise Refused("amount_too_large", f"quantity times unit price is above {MAX_AMOUNT}", where)
        if line.amount < 0:
            raise Refused(
                "discount_too_large", "the discount is larger than quantity times unit price", f"{where}.discount"
            )
        items.append(
            LineItem(index + 1, line.description, line.quantity, line.unit_price, line.discount, line.tax, line.amount)
        )
    subtotal = sum(line.amount + line.discount - line.tax for line in items)
    discount = sum(line.discount for line in items)
    tax = sum(line.tax for line in items)
    totals = Totals(subtotal, discount, tax, subtotal - discount + tax)
    if max(totals.subtotal, totals.total) > MAX_AMOUNT:
        raise Refused("amount_too_large", f"the document's total is above {MAX_AMOUNT}", "lines")
    return items, totals


def _currency(value: Any, field: str = "currency") -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise Refused("invalid_field", f"{field} must be an ISO 4217 code in capitals, such as USD", field)
    return value


def _day(value: Any, field: str) -> str:
    try:
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise Refused("invalid_field", f"{field} must be a date written YYYY-MM-DD", field)


def _dates(first: str, then: str | None, field: str) -> None:
    _day(first, "issued_on")
    if then is not None and _day(then, field) < first:
        raise Refused("date_order", f"{field} is before issued_on", field)


def _place(changes: dict[str, Any], before: Any = None) -> None:
    """Check the tax id, country and region being changed; the region is written as its ISO 3166-2 code.

    Only what changes is checked (with the other of country and region as it is), so a customer saved
    before these rules can still have, say, their email changed.
    """
    email = changes.get("email")
    if email and not mail.valid_address(str(email)):
        raise Refused("invalid_field", "email must be one email address, such as name@example.com", "email")
    tax_id = str(changes.get("tax_id", ""))
    if tax_id and (len(tax_id) > 64 or not re.fullmatch(TAX_ID, tax_id)):
        raise Refused(
            "invalid_field", "tax_id must be letters and digits, with spaces, dots, hyphens or slashes", "tax_id"
        )
    if "country" not in changes and "state" not in changes:
        return
    country = str(changes.get("country", getattr(before, "country", "")))
    state = str(changes.get("state", getattr(before, "state", "")))
    if "country" in changes and country and countries.country_name(country) is None:
        raise Refused("invalid_field", "country must be an ISO 3166-1 alpha-2 code in capitals, such as US", "country")
    if country and state:
        code = countries.region(country, state)
        if code is None:
            raise Refused("state_not_in_country", f"state must name a subdivision of {country} (ISO 3166-2)", "state")
        if code != state:
            changes["state"] = code


def _label(kind: str) -> str:
    return kind.replace("_", " ")


def estimate_version(estimate: Estimate) -> str:
    """A digest of what the customer reads on an estimate: an answer is taken only for the version they saw."""
    seen = [
        estimate.number,
        estimate.currency,
        estimate.issued_on,
        estimate.expires_on,
        estimate.subtotal,
        estimate.tax,
        estimate.total,
        estimate.notes,
        [[line.description, line.quantity, line.unit_price, line.discount, line.tax] for line in estimate.lines],
    ]
    return hashlib.sha256(json.dumps(seen, ensure_ascii=False).encode()).hexdigest()[:32]


class Answer(StrEnum):
    """How a customer's answer to an estimate went."""

    DONE = "done"
    CLOSED = "closed"  # it takes no answer now: answered meanwhile, expired, voided, or not the customer's
    CHANGED = "changed"  # it changed since the customer saw it: they review it again


# -- the write model ---------------------------------------------------------------------------


class Books:
    """One company's customers and documents, open for changes inside one transaction."""

    def __init__(self, conn: Connection, company_id: int, now: int, *, email: bool = True) -> None:
        self.conn = conn
        self.company_id = company_id
        self.now = now
        self.email = email  # False: changes send no email (an import of past invoices), webhooks still go
        self._scope = Scope(company_id)
        self._subscribers: list[tuple[int, tuple[str, ...]]] | None = None
        self._default_currency: str | None = None

    # -- events out (webhooks)

    def _wanting(self, event_type: str) -> list[int]:
        """The company's endpoints that want ``event_type`` (read once per transaction)."""
        if self._subscribers is None:
            self._subscribers = outbox.subscribers(self.conn, self.company_id)
        return [endpoint_id for endpoint_id, types in self._subscribers if event_type in types]

    def emit(self, event_type: str, obj: Any, **extra: Any) -> None:
        """Put an event in the outbox, in this transaction, for each endpoint of the company that wants it."""
        wanted = self._wanting(event_type)
        if wanted:
            kind = event_type.partition(".")[0]
            outbox.record_event(
                self.conn,
                self.company_id,
                wanted,
                event_type=event_type,
                object_kind=kind,
                object_id=str(obj.id),
                payload=lambda event_id: events.body(event_id, event_type, self.now, kind, obj, extra=extra),
                now=self.now,
            )
        if self.email:
            mail.on_event(self.conn, self.company_id, event_type, obj, now=self.now, extra=extra)

    # -- plumbing

    def _get(self, kind: str, object_id: int) -> Any:
        found = documents.get(self.conn, kind, self._scope, object_id)
        if found is None:
            raise NotFound(f"no such {_label(kind)}")
        return found

    def _lock(self, kind: str, object_id: int) -> SqlRow[Any]:
        row = documents.lock(self.conn, kind, self.company_id, object_id)
        if row is None:
            raise NotFound(f"no such {_label(kind)}")
        return row

    def _customer_of(self, values: Mapping[str, Any]) -> Customer:
        """The customer a new document is for (it must exist)."""
        found = documents.customer(self.conn, self.company_id, values["customer_id"])
        if found is None:
            raise Refused("customer_not_found", "no customer has this id", "customer_id")
        return found

    def _insert(self, kind: str, number: str | None, row: dict[str, Any], lines: Sequence[LineItem] = ()) -> Any:
        """Insert a document under its number, or the next free one; Refused ``number_taken`` if it is not free."""
        for _ in range(5):
            row["number"] = number or documents.next_number(self.conn, self.company_id, kind, NUMBER_PREFIXES[kind])
            document_id = documents.insert_document(self.conn, kind, row, lines)
            if document_id is not None:
                return self._get(kind, document_id)
            if number:
                break  # a number given by hand is taken; a drawn one was taken by hand meanwhile: draw again
        raise Refused("number_taken", f"another {_label(kind)} has number {row['number'][:64]!r}", "number")

    def _check_number(self, kind: str, values: Mapping[str, Any], own_id: int) -> None:
        if "number" in values and documents.number_taken(self.conn, kind, self.company_id, values["number"], own_id):
            raise Refused("number_taken", f"another {_label(kind)} has number {values['number'][:64]!r}", "number")

    def _save(self, kind: str, document_id: int, values: Mapping[str, Any], fields: Sequence[str]) -> Any:
        """Store a document's changed ``fields``, and its new lines and totals if ``values`` has lines."""
        if "currency" in values:
            _currency(values["currency"])
        self._check_number(kind, values, document_id)
        changes = {name: values[name] for name in fields if name in values}
        if "lines" in values:
            lines, totals = priced(values["lines"])
            changes.update(totals.columns(kind))
            if kind == "invoice":
                changes["balance"] = totals.total  # nothing is paid or credited on it: the caller checked
            documents.replace_lines(self.conn, kind, document_id, lines)
        return self._update(kind, document_id, changes)

    def _update(self, kind: str, object_id: int, changes: dict[str, Any]) -> Any:
        documents.update_row(self.conn, kind, self.company_id, object_id, {**changes, "updated_at": self.now})
        return self._get(kind, object_id)

    def _delete_draft(self, kind: str, document_id: int) -> Any:
        if self._lock(kind, document_id).status != "draft":
            raise Refused("not_a_draft", f"only drafts are deleted; void this {_label(kind)} instead")
        document = self._get(kind, document_id)
        documents.delete_document(self.conn, kind, document_id)
        return document

    def _settle(self, invoice_id: int, *, paid: int = 0, credited: int = 0, field: str) -> None:
        """Take a payment or credit off a locked invoice whose balance was checked: the update checks again."""
        if not documents.settle(self.conn, self.company_id, invoice_id, paid=paid, credited=credited, now=self.now):
            raise Refused("amount_exceeds_balance", "more than the invoice's balance", field)
        if self._wanting("invoice.paid"):
            invoice = self._get("invoice", invoice_id)
            if invoice.status == "paid":
                self.emit("invoice.paid", invoice)

    def _unsettle(self, invoice_id: int, *, paid: int = 0, credited: int = 0) -> None:
        if not documents.unsettle(self.conn, self.company_id, invoice_id, paid=paid, credited=credited, now=self.now):
            raise Refused("conflict", "the invoice changed meanwhile; retry")

    def _open_invoice(self, customer_id: int, invoice_id: Any, currency: str, field: str) -> SqlRow[Any]:
        """An open invoice of the customer in the currency, locked."""
        row = documents.lock(self.conn, "invoice", self.company_id, invoice_id) if type(invoice_id) is int else None
        if row is None or row.customer_id != customer_id or row.status != "open":
            raise Refused("invoice_not_open", "this is not an open invoice of the customer", field)
        if row.currency != currency:
            raise Refused("currency_mismatch", "the invoice is in another currency", field)
        return row

    # -- customers

    def _customer_fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A new customer's fields, checked (the company's currency when none is given)."""
        fields = {name: values[name] for name in CUSTOMER_FIELDS if name in values}
        if not str(fields.get("name", "")).strip():
            raise Refused("missing_field", "name is required", "name")
        if "currency" not in fields:
            if self._default_currency is None:
                self._default_currency = companies.default_currency(self.conn, self.company_id)
            fields["currency"] = self._default_currency
        _currency(fields["currency"])
        _place(fields)
        wanted = values.get("id")
        if wanted is not None and (type(wanted) is not int or not 0 < wanted <= MAX_ID):
            raise Refused("invalid_field", f"id must be a whole number from 1 to {MAX_ID}", "id")
        return fields

    def create_customer(self, values: Mapping[str, Any]) -> Customer:
        """A new customer; its id is the next one above the largest unless ``values`` names it."""
        fields = self._customer_fields(values)
        wanted = values.get("id")
        for _ in range(5):
            customer_id = (
                wanted if wanted is not None else documents.largest_customer_id(self.conn, self.company_id) + 1
            )
            if customer_id > MAX_ID:
                raise Refused("customer_id_required", "no id above the largest customer id is free: send an id", "id")
            row = {
                **fields,
                "company_id": self.company_id,
                "id": customer_id,
                "number": fields.get("number") or f"CUST-{customer_id:05d}",
                "created_at": self.now,
                "updated_at": self.now,
            }
            if documents.insert_customer(self.conn, row):
                found: Customer = self._get("customer", customer_id)
                self.emit("customer.created", found)
                return found
            if wanted is not None:
                raise Refused("customer_exists", f"customer {customer_id} already exists", "id")
        raise Refused("conflict", "customers are being created at the same time; retry")

    def create_customers(self, many: Sequence[Mapping[str, Any]]) -> list[Customer | Refused]:
        """New customers, each with its ``id`` (an import), in one statement: each checked as create_customer does.

        Each gets its customer, or its Refused (``customer_exists`` when its id is taken); the others are made.
        """
        results: list[Customer | Refused] = []
        rows: dict[int, dict[str, Any]] = {}
        for values in many:
            try:
                row = self._customer_row(values, taken=rows)
            except Refused as refused:
                results.append(refused)
                continue
            rows[row["id"]] = row
            results.append(Customer(**row))
        made = documents.insert_customers(self.conn, list(rows.values()))
        wanted = self._wanting("customer.created")
        for index, result in enumerate(results):
            if isinstance(result, Customer):
                if result.id not in made:
                    results[index] = Refused("customer_exists", f"customer {result.id} already exists", "id")
                elif wanted:
                    self.emit("customer.created", result)
        return results

    def _customer_row(self, values: Mapping[str, Any], *, taken: Mapping[int, Any]) -> dict[str, Any]:
        """A new customer's whole row, checked, for create_customers; ``taken``: ids already in this call."""
        fields = self._customer_fields(values)
        customer_id = values.get("id")
        if customer_id is None:
            raise Refused("missing_field", "id is required", "id")
        if customer_id in taken:
            raise Refused("customer_exists", f"customer {customer_id} already exists", "id")
        row = {
            **dict.fromkeys(CUSTOMER_FIELDS, ""),
            **fields,
            "company_id": self.company_id,
            "id": customer_id,
            "number": fields.get("number") or f"CUST-{customer_id:05d}",
            "created_at": self.now,
            "updated_at": self.now,
        }
        check_row(t.customers, row)
        return row

    def update_customer(self, customer_id: int, values: Mapping[str, Any]) -> Customer:
        return self.change_customer(customer_id, values)[0]

    def change_customer(self, customer_id: int, values: Mapping[str, Any]) -> tuple[Customer, dict[str, Any]]:
        """The company's change to a customer: the customer after it, and what the changed fields were before."""
        before = self._lock("customer", customer_id)
        changes = {name: values[name] for name in CUSTOMER_FIELDS if name in values}
        _place(changes, before)
        if "currency" in changes:
            _currency(changes["currency"])
        if "name" in changes and not str(changes["name"]).strip():
            raise Refused("invalid_field", "name must have at least one visible character", "name")
        updated: Customer = (
            self._update("customer", customer_id, changes) if changes else self._get("customer", customer_id)
        )
        previous = {name: getattr(before, name) for name in changes if getattr(before, name) != changes[name]}
        if previous:
            self.emit("customer.updated", updated, previous=previous)
        return updated, previous

    def delete_customer(self, customer_id: int) -> Customer:
        """Delete a customer that has no documents (documents are never deleted with their customer)."""
        self._lock("customer", customer_id)
        customer: Customer = self._get("customer", customer_id)
        kind = documents.first_document_kind(self.conn, self.company_id, customer_id)
        if kind is not None:
            raise Refused(
                "customer_has_documents",
                f"the customer has {_label(kind)}s; void or delete them first, or keep the customer",
            )
        documents.delete_customer(self.conn, self.company_id, customer_id)
        return customer

    def update_billing_info(self, customer_id: int, values: Mapping[str, str]) -> list[str]:
        """The customer's own change to their billing contact and address; the company is told. Returns what changed."""
        unknown = set(values) - set(BILLING_FIELDS)
        if unknown:
            raise ValueError(f"not billing fields: {sorted(unknown)}")
        before = self._lock("customer", customer_id)
        wanted = dict(values)
        _place(wanted, before)
        changed = {name: value for name, value in wanted.items() if getattr(before, name) != value}
        if changed:
            updated = self._update("customer", customer_id, changed)
            changes = {name: {"old": getattr(before, name), "new": value} for name, value in sorted(changed.items())}
            self.emit("customer.billing_info_updated", updated, changes=changes)
            # The old values too, so that the company sees what the customer changed (the dashboard's customer page).
            documents.record_customer_event(
                self.conn,
                self.company_id,
                customer_id,
                "billing_info.updated",
                {"fields": sorted(changed), "changes": changes},
                now=self.now,
            )
        return sorted(changed)

    def set_customer_locale(self, customer_id: int, locale: str) -> bool:
        """The customer's preferred language ("" for none; a shipped locale). Returns whether it changed."""
        if locale and locale not in i18n.LOCALES:
            raise Refused("invalid_locale", "Choose one of the languages offered.", "locale")
        before = self._lock("customer", customer_id)
        if before.locale == locale:
            return False
        self._update("customer", customer_id, {"locale": locale})
        return True

    # -- invoices

    def create_invoice(self, values: Mapping[str, Any]) -> Invoice:
        """An invoice, draft or open (owed from now on)."""
        row, lines = self._invoice_row(values, self._customer_of(values))
        invoice: Invoice = self._insert("invoice", values.get("number"), row, lines)
        self._invoice_made(invoice)
        return invoice

    def _invoice_made(self, invoice: Invoice) -> None:
        self.emit("invoice.created", invoice)
        if invoice.status == "open":
            self.emit("invoice.issued", invoice)

    def create_invoices(self, many: Sequence[Mapping[str, Any]]) -> list[Invoice | Refused]:
        """New invoices, each with its ``number`` (an import), in a few statements: each checked as create_invoice does.

        Each gets its invoice, or its Refused (``number_taken`` when its number is taken); the others are made.
        """
        wanted = [values.get("customer_id") for values in many]
        found = documents.customers_among(self.conn, self.company_id, [i for i in wanted if type(i) is int])
        results: list[Invoice | Refused] = []
        rows: dict[str, tuple[dict[str, Any], list[LineItem]]] = {}
        for values in many:
            try:
                row, lines = self._numbered_invoice_row(values, found, taken=rows)
            except Refused as refused:
                results.append(refused)
                continue
            rows[row["number"]] = (row, lines)
            results.append(Invoice(id=0, **row, lines=tuple(lines)))
        made = documents.insert_documents(self.conn, "invoice", list(rows.values()))
        for index, result in enumerate(results):
            if isinstance(result, Invoice):
                if result.number not in made:
                    results[index] = Refused(
                        "number_taken", f"another invoice has number {result.number[:64]!r}", "number"
                    )
                else:
                    invoice = dataclasses.replace(result, id=made[result.number])
                    results[index] = invoice
                    if self._wanting("invoice.created") or self._wanting("invoice.issued"):
                        self._invoice_made(invoice)
        return results

    def _numbered_invoice_row(
        self, values: Mapping[str, Any], customers: Mapping[int, Customer], *, taken: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[LineItem]]:
        customer = customers.get(values.get("customer_id"))  # type: ignore[arg-type]
        if customer is None:
            raise Refused("customer_not_found", "no customer has this id", "customer_id")
        number = values.get("number")
        if not isinstance(number, str) or not number:
            raise Refused("missing_field", "number is required", "number")
        if number in taken:
            raise Refused("number_taken", f"another invoice has number {number[:64]!r}", "number")
        row, lines = self._invoice_row(values, customer)
        row["number"] = number
        documents.check_document("invoice", row, lines)
        return row, lines

    def _invoice_row(self, values: Mapping[str, Any], customer: Customer) -> tuple[dict[str, Any], list[LineItem]]:
        """A new invoice's row (without its number) and lines, checked."""
        currency = _currency(values.get("currency") or customer.currency)
        status = values.get("status", "open")
        if status not in ("draft", "open"):
            raise Refused("invalid_status", "an invoice is made as a draft or open; payments make it paid", "status")
        _dates(values["issued_on"], values.get("due_on"), "due_on")
        lines, totals = priced(values["lines"])
        row = {
            "company_id": self.company_id,
            "customer_id": customer.id,
            "currency": currency,
            "status": status,
            "issued_on": values["issued_on"],
            "due_on": values.get("due_on"),
            **totals.columns("invoice"),
            "amount_paid": 0,
            "amount_credited": 0,
            "balance": totals.total,
            "notes": values.get("notes", ""),
            "created_at": self.now,
            "updated_at": self.now,
        }
        return row, lines

    def update_invoice(self, invoice_id: int, values: Mapping[str, Any]) -> Invoice:
        """Change an invoice. Paid and voided ones keep all but their notes; lines change only while nothing is paid."""
        row = self._lock("invoice", invoice_id)
        status = row.status
        if status in ("paid", "voided") and set(values) - {"notes"}:
            raise Refused("invoice_not_editable", f"a {status} invoice can only have its notes changed")
        new_status = values.get("status", status)
        if new_status != status and not (status == "draft" and new_status == "open"):
            raise Refused("invalid_status_change", f"an invoice cannot go from {status} to {new_status}", "status")
        if values.get("currency", row.currency) != row.currency and status != "draft":
            raise Refused("invoice_not_editable", "only a draft invoice can change its currency", "currency")
        if "lines" in values and (row.amount_paid or row.amount_credited):
            raise Refused("invoice_not_editable", "the lines of an invoice with payments or credits are fixed", "lines")
        _dates(values.get("issued_on", row.issued_on), values.get("due_on", row.due_on), "due_on")
        invoice: Invoice = self._save("invoice", invoice_id, values, _INVOICE_FIELDS)
        if invoice.status != status and invoice.status == "open":
            self.emit("invoice.issued", invoice)
        return invoice

    def delete_invoice(self, invoice_id: int) -> Invoice:
        """Delete a draft (an invoice that was issued is voided instead)."""
        invoice: Invoice = self._delete_draft("invoice", invoice_id)
        return invoice

    def void_invoice(self, invoice_id: int) -> Invoice:
        """Void an open invoice that nothing was paid or credited on: it is owed no more."""
        row = self._lock("invoice", invoice_id)
        if row.status != "open":
            raise Refused("not_voidable", f"a {row.status} invoice cannot be voided (only open ones)")
        if row.amount_paid or row.amount_credited:
            raise Refused("not_voidable", "delete the payments and void the credit notes applied to it first")
        invoice: Invoice = self._update("invoice", invoice_id, {"status": "voided", "balance": 0})
        self.emit("invoice.voided", invoice)
        return invoice

    # -- payments

    def record_payment(self, values: Mapping[str, Any]) -> Payment:
        """A payment received, applied at once to the invoices it lists; what is left stays as credit."""
        customer = self._customer_of(values)
        currency = _currency(values.get("currency") or customer.currency)
        if values["method"] not in PAYMENT_METHODS:
            raise Refused("invalid_field", f"method must be one of {', '.join(PAYMENT_METHODS)}", "method")
        amount = _amount(values["amount"], "amount", minimum=1)
        _day(values["received_on"], "received_on")
        applications = [(a["invoice_id"], a["amount"]) for a in values.get("applications", ())]
        for index, (_, applied) in enumerate(applications):
            _amount(applied, f"applications[{index}].amount", minimum=1)
        if sum(applied for _, applied in applications) > amount:
            raise Refused("overapplied", "the applications add up to more than the payment", "applications")
        seen: set[Any] = set()
        for index, (invoice_id, _) in enumerate(applications):
            if invoice_id in seen:
                raise Refused("duplicate_invoice", "an invoice is listed twice", f"applications[{index}].invoice_id")
            seen.add(invoice_id)
        # Invoices are locked in id order, so two payments of the same invoices never wait on each other.
        order = sorted(
            range(len(applications)), key=lambda i: applications[i][0] if type(applications[i][0]) is int else 0
        )
        for index in order:
            invoice_id, applied = applications[index]
            invoice = self._open_invoice(customer.id, invoice_id, currency, f"applications[{index}].invoice_id")
            if applied > invoice.balance:
                raise Refused(
                    "amount_exceeds_balance", "more than the invoice's balance", f"applications[{index}].amount"
                )
        row = {
            "company_id": self.company_id,
            "customer_id": customer.id,
            "currency": currency,
            "received_on": values["received_on"],
            "method": values["method"],
            "reference": values.get("reference", ""),
            "amount": amount,
            "method_detail": values.get("method_detail", ""),
            "gateway_payment_id": values.get("gateway_payment_id"),
            "gateway": values.get("gateway"),
            "created_at": self.now,
            "updated_at": self.now,
        }
        payment: Payment = self._insert("payment", values.get("number"), row)
        for index in order:
            invoice_id, applied = applications[index]
            self._settle(invoice_id, paid=applied, field=f"applications[{index}].amount")
        documents.insert_applications(self.conn, payment.id, applications)
        recorded: Payment = self._get("payment", payment.id)
        self.emit("payment.created", recorded)
        return recorded

    def update_payment(self, payment_id: int, values: Mapping[str, Any]) -> Payment:
        """Change a payment's details (not its amount or applications: delete it and record it again)."""
        self._lock("payment", payment_id)
        if "method" in values and values["method"] not in PAYMENT_METHODS:
            raise Refused("invalid_field", f"method must be one of {', '.join(PAYMENT_METHODS)}", "method")
        if "received_on" in values:
            _day(values["received_on"], "received_on")
        payment: Payment = self._save("payment", payment_id, values, _PAYMENT_FIELDS)
        return payment

    def delete_payment(self, payment_id: int) -> Payment:
        """Delete a payment (recorded by mistake, or bounced): the invoices it paid are owed again."""
        self._lock("payment", payment_id)
        if refunds.has_any(self.conn, payment_id):
            raise Refused("payment_has_refunds", "a payment with refunds is kept; refund what is left instead")
        payment: Payment = self._get("payment", payment_id)
        for invoice_id, applied in documents.applications(self.conn, payment_id):
            self._unsettle(invoice_id, paid=applied)
        documents.delete_document(self.conn, "payment", payment_id)
        return payment

    # -- refunds

    def refund_payment(
        self,
        payment_id: int,
        *,
        amount: int | None,
        reason: str,
        source: str,
        request_key: str,
        refunded_on: str,
        online: bool,
    ) -> tuple[Refund, bool]:
        """Give back some or all of a payment (``amount`` None: all that is left), never more than it.

        A payment recorded offline is refunded in the books at once. One taken online holds the
        amount in a pending refund until :meth:`conclude_refund` writes the gateway's answer. The
        payment's row is locked first, so concurrent refunds take turns and never add up to more
        than the payment. A ``request_key`` used before answers the refund it made (and False:
        this call made none).
        """
        row = self._lock("payment", payment_id)
        earlier = refunds.by_request(self.conn, self.company_id, request_key)
        if earlier is not None:
            if earlier.payment_id != payment_id:
                raise Refused("idempotency_key_reused", "this key made a refund of another payment", "Idempotency-Key")
            return earlier, False
        if source not in REFUND_SOURCES:
            raise ValueError(f"not a refund source: {source}")
        if not isinstance(reason, str) or len(reason) > 500 or not storable_text(reason):
            raise Refused("invalid_field", "reason is text of up to 500 characters", "reason")
        left = row.amount - row.amount_refunded - refunds.pending_total(self.conn, payment_id)
        if amount is None:
            if left <= 0:
                raise Refused("payment_fully_refunded", "the whole payment is refunded already", "amount")
            amount = left
        _amount(amount, "amount", minimum=1)
        if amount > left:
            raise Refused(
                "refund_exceeds_payment", f"at most {max(left, 0)} of the payment is left to refund", "amount"
            )
        values = {
            "company_id": self.company_id,
            "payment_id": payment_id,
            "amount": amount,
            "reason": reason,
            "status": "pending" if online else "succeeded",
            "source": source,
            "refunded_on": _day(refunded_on, "refunded_on"),
            "request_key": request_key,
            "created_at": self.now,
            "updated_at": self.now,
        }
        refund_id = refunds.insert(self.conn, values)
        if refund_id is None:
            raise Refused("conflict", "this request is being answered meanwhile; retry")
        if not online:
            self._give_back(payment_id, refund_id, amount)
        return self._refund(refund_id), True

    def conclude_refund(self, refund_id: int, *, gateway_refund_id: str | None, message: str = "") -> Refund:
        """Write the gateway's answer on a pending refund: with its refund id it succeeded, else it failed."""
        found = self._refund(refund_id)
        self._lock("payment", found.payment_id)
        refund = refunds.get(self.conn, self.company_id, refund_id, lock=True)
        assert refund is not None
        if refund.status != "pending":
            return refund  # answered already (the webhook, or a retry)
        if gateway_refund_id is None:
            refunds.change(self.conn, refund_id, {"status": "failed", "message": message[:300], "updated_at": self.now})
            return self._refund(refund_id)
        recorded = refunds.by_gateway_id(self.conn, self.company_id, gateway_refund_id)
        if recorded is not None:  # the gateway's webhook recorded it first, as a refund of its own
            note = "recorded from the gateway's notice"
            refunds.change(self.conn, refund_id, {"status": "failed", "message": note, "updated_at": self.now})
            return recorded
        changes = {"status": "succeeded", "gateway_refund_id": gateway_refund_id, "updated_at": self.now}
        refunds.change(self.conn, refund_id, changes)
        self._give_back(refund.payment_id, refund_id, refund.amount)
        return self._refund(refund_id)

    def record_gateway_refund(
        self, gateway_payment_id: str, gateway_refund_id: str, amount: int, *, ours: int | None, refunded_on: str
    ) -> Refund | None:
        """A refund the gateway reports (its webhook): ours (pending) is concluded, one made in its own
        dashboard is recorded; one recorded before, or of a payment not on record, changes nothing."""
        payment_id = refunds.payment_of(self.conn, self.company_id, gateway_payment_id)
        if payment_id is None:
            return None
        row = self._lock("payment", payment_id)
        if refunds.by_gateway_id(self.conn, self.company_id, gateway_refund_id) is not None:
            return None
        mine = refunds.get(self.conn, self.company_id, ours) if ours is not None else None
        if mine is not None and mine.payment_id == payment_id and mine.status == "pending":
            return self.conclude_refund(mine.id, gateway_refund_id=gateway_refund_id)
        if type(amount) is not int or not 0 < amount <= row.amount - row.amount_refunded:
            return None  # more than is left: the gateway's own record disagrees with ours; nothing is guessed
        values = {
            "company_id": self.company_id,
            "payment_id": payment_id,
            "amount": amount,
            "reason": "Refunded in the payment gateway's dashboard",
            "status": "succeeded",
            "source": "gateway",
            "refunded_on": _day(refunded_on, "refunded_on"),
            "request_key": f"gateway:{gateway_refund_id}"[:100],
            "gateway_refund_id": gateway_refund_id,
            "created_at": self.now,
            "updated_at": self.now,
        }
        refund_id = refunds.insert(self.conn, values)
        if refund_id is None:
            return None
        self._give_back(payment_id, refund_id, amount)
        return self._refund(refund_id)

    def _refund(self, refund_id: int) -> Refund:
        found = refunds.get(self.conn, self.company_id, refund_id)
        if found is None:
            raise NotFound("no such refund")
        return found

    def _give_back(self, payment_id: int, refund_id: int, amount: int) -> None:
        """Put a refund in the books: the payment's unapplied credit goes first, then what it applied to
        invoices, newest application (the highest invoice id) first; those invoices are owed again."""
        payment: Payment = self._get("payment", payment_id)
        rest = amount - min(max(payment.unapplied, 0), amount)
        taken: list[tuple[int, int]] = []
        for application in sorted(payment.applications, key=lambda a: a.invoice_id, reverse=True):
            if rest == 0:
                break
            part = min(rest, application.amount)
            taken.append((application.invoice_id, part))
            rest -= part
        if rest or not refunds.add_refunded(self.conn, payment_id, amount, now=self.now):
            raise Refused("refund_exceeds_payment", "more than is left of the payment", "amount")
        for invoice_id, _ in sorted(taken):  # invoices locked in id order, as payments lock them
            self._lock("invoice", invoice_id)
        for invoice_id, part in taken:
            self._unsettle(invoice_id, paid=part)
            refunds.take_back(self.conn, payment_id, invoice_id, part)
        refunds.insert_applications(self.conn, refund_id, taken)
        self.emit("payment.refunded", self._get("payment", payment_id), refund=self._refund(refund_id))

    # -- credit notes

    def create_credit_note(self, values: Mapping[str, Any]) -> CreditNote:
        """A credit note: account credit (open), or applied to the open invoice ``invoice_id`` at once."""
        customer = self._customer_of(values)
        currency = _currency(values.get("currency") or customer.currency)
        _dates(values["issued_on"], None, "issued_on")
        lines, totals = priced(values["lines"])
        invoice_id = values.get("invoice_id")
        status = values.get("status", "open")
        if status not in ("draft", "open"):
            raise Refused("invalid_status", "a credit note is made as a draft or open", "status")
        if invoice_id is not None:
            invoice = self._open_invoice(customer.id, invoice_id, currency, "invoice_id")
            if not 0 < totals.total <= invoice.balance:
                raise Refused(
                    "amount_exceeds_balance", "the credit must be more than 0 and at most the balance", "lines"
                )
            if status == "draft":
                raise Refused("invalid_status", "a credit note applied to an invoice is not a draft", "status")
            status = "applied"
        row = {
            "company_id": self.company_id,
            "customer_id": customer.id,
            "currency": currency,
            "status": status,
            "issued_on": values["issued_on"],
            "invoice_id": invoice_id,
            **totals.columns("credit_note"),
            "notes": values.get("notes", ""),
            "created_at": self.now,
            "updated_at": self.now,
        }
        note: CreditNote = self._insert("credit_note", values.get("number"), row, lines)
        if invoice_id is not None:
            self._settle(invoice_id, credited=totals.total, field="lines")
        self.emit("credit_note.created", note)
        return note

    def update_credit_note(self, note_id: int, values: Mapping[str, Any]) -> CreditNote:
        """Change a credit note: its lines, currency and status only while it is a draft."""
        row = self._lock("credit_note", note_id)
        if row.status == "voided" and set(values) - {"notes"}:
            raise Refused("credit_note_not_editable", "a voided credit note can only have its notes changed")
        new_status = values.get("status", row.status)
        if new_status != row.status and not (row.status == "draft" and new_status == "open"):
            raise Refused(
                "invalid_status_change", f"a credit note cannot go from {row.status} to {new_status}", "status"
            )
        if ("lines" in values or "currency" in values) and row.status != "draft":
            raise Refused("credit_note_not_editable", "only a draft's lines and currency can change", "lines")
        if "issued_on" in values:
            _day(values["issued_on"], "issued_on")
        note: CreditNote = self._save("credit_note", note_id, values, _CREDIT_NOTE_FIELDS)
        return note

    def delete_credit_note(self, note_id: int) -> CreditNote:
        note: CreditNote = self._delete_draft("credit_note", note_id)
        return note

    def void_credit_note(self, note_id: int) -> CreditNote:
        """Void a credit note; one applied to an invoice gives the invoice its balance back."""
        row = self._lock("credit_note", note_id)
        if row.status not in ("open", "applied"):
            raise Refused("not_voidable", f"a {row.status} credit note cannot be voided")
        if row.status == "applied" and row.invoice_id is not None:
            self._lock("invoice", row.invoice_id)
            self._unsettle(row.invoice_id, credited=row.total)
        note: CreditNote = self._update("credit_note", note_id, {"status": "voided"})
        return note

    # -- estimates

    def create_estimate(self, values: Mapping[str, Any]) -> Estimate:
        customer = self._customer_of(values)
        currency = _currency(values.get("currency") or customer.currency)
        status = values.get("status", "sent")
        if status not in ("draft", "sent", "declined"):
            raise Refused("invalid_status", "an estimate is made as a draft, sent or declined", "status")
        _dates(values["issued_on"], values.get("expires_on"), "expires_on")
        lines, totals = priced(values["lines"])
        row = {
            "company_id": self.company_id,
            "customer_id": customer.id,
            "currency": currency,
            "status": status,
            "issued_on": values["issued_on"],
            "expires_on": values.get("expires_on"),
            "declined_at": self.now if status == "declined" else None,
            **totals.columns("estimate"),
            "notes": values.get("notes", ""),
            "created_at": self.now,
            "updated_at": self.now,
        }
        estimate: Estimate = self._insert("estimate", values.get("number"), row, lines)
        return estimate

    def update_estimate(self, estimate_id: int, values: Mapping[str, Any]) -> Estimate:
        """Change an estimate; an approved or voided one keeps all but its notes."""
        row = self._lock("estimate", estimate_id)
        status = row.status
        if status in ("approved", "voided") and set(values) - {"notes"}:
            raise Refused("estimate_not_editable", f"an {status} estimate can only have its notes changed")
        new_status = values.get("status", status)
        if new_status != status and (status, new_status) not in _ESTIMATE_MOVES:
            raise Refused("invalid_status_change", f"an estimate cannot go from {status} to {new_status}", "status")
        _dates(values.get("issued_on", row.issued_on), values.get("expires_on", row.expires_on), "expires_on")
        estimate: Estimate = self._save("estimate", estimate_id, values, _ESTIMATE_FIELDS)
        if new_status != status:
            # Declined (by the company) now, or sent again: a decline of before is history (customer_events).
            declined_at = self.now if new_status == "declined" else None
            estimate = self._update("estimate", estimate_id, {"declined_at": declined_at, "decline_reason": ""})
        return estimate

    def delete_estimate(self, estimate_id: int) -> Estimate:
        estimate: Estimate = self._delete_draft("estimate", estimate_id)
        return estimate

    def void_estimate(self, estimate_id: int) -> Estimate:
        row = self._lock("estimate", estimate_id)
        if row.status in ("draft", "voided"):
            raise Refused("not_voidable", f"a {row.status} estimate cannot be voided")
        estimate: Estimate = self._update("estimate", estimate_id, {"status": "voided"})
        return estimate

    def _answerable(self, estimate_id: int, customer_id: int, version: str, valid_on: str | None) -> Answer:
        """Whether the customer can answer the estimate now (it is locked), in the version they saw."""
        row = documents.lock(self.conn, "estimate", self.company_id, estimate_id)
        if row is None or row.customer_id != customer_id or row.status != "sent":
            return Answer.CLOSED
        if valid_on is not None and row.expires_on is not None and row.expires_on < valid_on:
            return Answer.CLOSED
        if estimate_version(self._get("estimate", estimate_id)) != version:
            return Answer.CHANGED
        return Answer.DONE

    def approve_estimate(
        self, estimate_id: int, customer_id: int, *, approved_by: str, version: str, valid_on: str | None
    ) -> Answer:
        """The customer approves a sent estimate (not expired on ``valid_on``) in the ``version`` they saw."""
        answer = self._answerable(estimate_id, customer_id, version, valid_on)
        if answer is not Answer.DONE:
            return answer
        approved = self._update(
            "estimate", estimate_id, {"status": "approved", "approved_by": approved_by, "approved_at": self.now}
        )
        self.emit("estimate.approved", approved)
        detail = {"estimate_id": estimate_id, "by": approved_by}
        documents.record_customer_event(
            self.conn, self.company_id, customer_id, "estimate.approved", detail, now=self.now
        )
        return Answer.DONE

    def decline_estimate(
        self, estimate_id: int, customer_id: int, *, reason: str, version: str, valid_on: str | None
    ) -> Answer:
        """The customer declines a sent estimate in the ``version`` they saw, with a reason (may be empty)."""
        answer = self._answerable(estimate_id, customer_id, version, valid_on)
        if answer is not Answer.DONE:
            return answer
        self._update("estimate", estimate_id, {"status": "declined", "declined_at": self.now, "decline_reason": reason})
        detail = {"estimate_id": estimate_id, "reason": reason}
        documents.record_customer_event(
            self.conn, self.company_id, customer_id, "estimate.declined", detail, now=self.now
        )
        return Answer.DONE


# -- the service ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """What My Account shows: a page of open invoices (and how many are open), the balance, the newest payments."""

    open_invoices: list[Invoice]
    open_count: int
    balance: statements.AccountBalance
    payments: list[Payment]


@dataclass(frozen=True, slots=True)
class SettledInvoice:
    """An invoice and what settled it: its payments (each with the amount applied to it) and its credit notes."""

    invoice: Invoice
    payments: list[tuple[Payment, int]]
    credit_notes: list[CreditNote]


class Billing:
    """Billing data of every company: :meth:`write` opens :class:`Books` in a transaction; the reads are here too."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def write(self, company_id: int, work: Callable[[Books], T], *, now: int) -> T:
        """Run ``work`` on the company's books in one transaction (all of it, or nothing)."""
        return await self.store.write(lambda conn: work(Books(conn, company_id, now)))

    # -- the changes callers make most, each in a transaction of its own

    async def create_customer(self, company_id: int, values: Mapping[str, Any], *, now: int) -> Customer:
        return await self.write(company_id, lambda books: books.create_customer(values), now=now)

    async def create_invoice(self, company_id: int, values: Mapping[str, Any], *, now: int) -> Invoice:
        return await self.write(company_id, lambda books: books.create_invoice(values), now=now)

    async def record_payment(self, company_id: int, values: Mapping[str, Any], *, now: int) -> Payment:
        return await self.write(company_id, lambda books: books.record_payment(values), now=now)

    async def create_credit_note(self, company_id: int, values: Mapping[str, Any], *, now: int) -> CreditNote:
        return await self.write(company_id, lambda books: books.create_credit_note(values), now=now)

    async def create_estimate(self, company_id: int, values: Mapping[str, Any], *, now: int) -> Estimate:
        return await self.write(company_id, lambda books: books.create_estimate(values), now=now)

    async def approve_estimate(
        self,
        company_id: int,
        customer_id: int,
        estimate_id: int,
        *,
        approved_by: str,
        version: str,
        now: int,
        valid_on: str | None,
    ) -> Answer:
        return await self.write(
            company_id,
            lambda books: books.approve_estimate(
                estimate_id, customer_id, approved_by=approved_by, version=version, valid_on=valid_on
            ),
            now=now,
        )

    async def decline_estimate(
        self,
        company_id: int,
        customer_id: int,
        estimate_id: int,
        *,
        reason: str,
        version: str,
        now: int,
        valid_on: str | None,
    ) -> Answer:
        return await self.write(
            company_id,
            lambda books: books.decline_estimate(
                estimate_id, customer_id, reason=reason, version=version, valid_on=valid_on
            ),
            now=now,
        )

    async def update_billing_info(
        self, company_id: int, customer_id: int, values: Mapping[str, str], *, now: int
    ) -> list[str]:
        return await self.write(company_id, lambda books: books.update_billing_info(customer_id, values), now=now)

    async def set_customer_locale(self, company_id: int, customer_id: int, locale: str, *, now: int) -> bool:
        return await self.write(company_id, lambda books: books.set_customer_locale(customer_id, locale), now=now)

    # -- reads

    async def get(self, kind: str, scope: Scope, object_id: int) -> Any:
        """One customer or document in scope, complete; None if there is none (or it is not in scope)."""
        return await self.store.read(lambda conn: documents.get(conn, kind, scope, object_id))

    async def customer(self, company_id: int, customer_id: int) -> Customer | None:
        return await self.store.read(lambda conn: documents.customer(conn, company_id, customer_id))

    async def customers(self, company_id: int, limit: int = 100) -> list[Customer]:
        return await self.store.read(lambda conn: documents.customers(conn, company_id, limit))

    async def customer_page(
        self, company_id: int, *, limit: int, after: int | None = None, search: str = "", owing: str = "", today: str
    ) -> CustomerPage:
        """One page of the dashboard's customers list, with what each owes (storage/customer_lists.py)."""
        return await self.store.read(
            lambda conn: customer_lists.customer_page(
                conn, company_id, limit=limit, after=after, search=search, owing=owing, today=today
            )
        )

    async def listing(self, kind: str, company_id: int, *, limit: int, **filters: Any) -> tuple[list[Any], bool]:
        """A page of a company's objects in id order (the API's lists), and whether more follow."""
        return await self.store.read(lambda conn: documents.listing(conn, kind, company_id, limit=limit, **filters))

    async def invoices(
        self,
        scope: Scope,
        *,
        statuses: Sequence[str] = (),
        past_due_before: str | None = None,
        number_contains: str = "",
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[list[Invoice], int]:
        """One page of invoices in scope, newest first, and how many match."""
        where = documents.invoice_filters(past_due_before, number_contains)
        return await self.store.read(
            lambda conn: documents.page(
                conn, "invoice", scope, statuses=tuple(statuses), where=where, limit=limit, offset=offset
            )
        )

    async def documents(self, kind: str, scope: Scope, *, limit: int = 25, offset: int = 0) -> tuple[list[Any], int]:
        """One page of payments, credit notes or estimates in scope, newest first, and how many there are."""
        return await self.store.read(lambda conn: documents.page(conn, kind, scope, limit=limit, offset=offset))

    async def recent_payments(self, scope: Scope, limit: int = 5) -> list[Payment]:
        """The newest payments, without counting them all (for My Account)."""
        payments, _ = await self.store.read(
            lambda conn: documents.page(conn, "payment", scope, limit=limit, count=False)
        )
        return payments

    async def settlements(self, scope: Scope, invoice_id: int) -> tuple[list[tuple[Payment, int]], list[CreditNote]]:
        """What settled one invoice: its payments (with the amount applied) and its credit notes."""
        return await self.store.read(lambda conn: documents.settlements(conn, scope, invoice_id))

    async def settled_invoice(self, scope: Scope, invoice_id: int) -> SettledInvoice | None:
        """One invoice in scope with what settled it, in one read transaction; None as :meth:`get`."""

        def read(conn: Connection) -> SettledInvoice | None:
            invoice: Invoice | None = documents.get(conn, "invoice", scope, invoice_id)
            if invoice is None:
                return None
            return SettledInvoice(invoice, *documents.settlements(conn, scope, invoice.id))

        return await self.store.read(read)

    async def summary(self, scope: Scope, currency: str, *, today: str, limit: int, recent: int) -> AccountSummary:
        """My Account's reads in one read transaction: open invoices, the balance, the newest payments."""
        customer_id = scope.customer_id
        assert customer_id is not None

        def read(conn: Connection) -> AccountSummary:
            invoices, count = documents.page(conn, "invoice", scope, statuses=("open",), limit=limit)
            owed, past_due, unused = documents.account_balance(conn, scope.company_id, customer_id, currency, today)
            payments, _ = documents.page(conn, "payment", scope, limit=recent, count=False)
            balance = statements.AccountBalance(owed=owed, past_due=past_due, unused_credit=unused)
            return AccountSummary(invoices, count, balance, payments)

        return await self.store.read(read)

    async def account_balance(
        self, company_id: int, customer_id: int, currency: str, *, today: str | None = None
    ) -> statements.AccountBalance:
        """What the customer owes now: open invoices less unused credit, and how much is past due (one query)."""
        owed, past_due, unused = await self.store.read(
            lambda conn: documents.account_balance(conn, company_id, customer_id, currency, today)
        )
        return statements.AccountBalance(owed=owed, past_due=past_due, unused_credit=unused)

    async def balance_forward_statement(
        self, company_id: int, customer_id: int, currency: str, month: statements.Month, *, today: str
    ) -> statements.BalanceForwardStatement:
        """The month's activity between its opening and closing balances (up to ``today``)."""
        kind = "balance-forward"
        ledger = await self.store.read(
            lambda conn: _ledger_of(conn, company_id, customer_id, currency, kind, month=month, today=today)
        )
        return statements.balance_forward(ledger, month, today)

    async def statement(
        self,
        company_id: int,
        customer_id: int,
        currency: str,
        kind: StatementKind,
        asked: statements.Month | None,
        *,
        today: str,
        since: str,
    ) -> tuple[statements.StatementMonths, statements.Month, Statement]:
        """The months offered (the customer exists ``since``), the month shown (``asked``, else the default) and
        its statement of ``kind``, in one read."""

        def read(conn: Connection) -> tuple[statements.StatementMonths, statements.Month, Ledger]:
            first, last = documents.activity_span(conn, company_id, customer_id, currency, today)
            months = statements.statement_months(today, since, first, last)
            month = asked or months.default
            return months, month, _ledger_of(conn, company_id, customer_id, currency, kind, month=month, today=today)

        months, month, ledger = await self.store.read(read)
        if kind == "balance-forward":
            return months, month, statements.balance_forward(ledger, month, today)
        return months, month, statements.open_items(ledger, month, today)

    async def open_item_statement(
        self, company_id: int, customer_id: int, currency: str, month: statements.Month, *, today: str
    ) -> statements.OpenItemStatement:
        """Invoices owed and credit unused at the month's end (or ``today``, if earlier)."""
        end = min(month.last_day, today)
        ledger = await self.store.read(lambda conn: documents.ledger(conn, company_id, customer_id, currency, end))
        return statements.open_items(ledger, month, today)

    async def customer_events(
        self, company_id: int, *, customer_id: int | None = None, limit: int = 50
    ) -> list[CustomerEvent]:
        return await self.store.read(lambda conn: documents.customer_events(conn, company_id, customer_id, limit))


def _ledger_of(
    conn: Connection,
    company_id: int,
    customer_id: int,
    currency: str,
    kind: str,
    *,
    month: statements.Month,
    today: str,
) -> Ledger:
    """What a statement of ``kind`` for ``month`` (up to ``today``) reads: a balance forward only the month."""
    end = min(month.last_day, today)
    if kind == "balance-forward" and month.first_day <= end:
        return documents.month_ledger(conn, company_id, customer_id, currency, since=month.first_day, until=end)
    return documents.ledger(conn, company_id, customer_id, currency, end)
