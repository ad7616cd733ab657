"""CSV imports of customers, of invoices with their lines, and of customers' contacts.

Customers and invoices are written through the one write model, ``Books``; contacts through
services/contacts.py, the one place of their rules (the API's and the dashboard's too).

A file is read whole (:func:`parse`): UTF-8, with or without a byte order mark,
one header row naming the columns (docs/imports.md), every cell and row bounded.
What the file cannot be (not UTF-8, no header, an unknown column, a broken quote)
refuses the whole file. Then each unit (a customer: one row; an invoice: its rows,
one per line, grouped by its number; a contact: one row) goes through the same
``Books`` methods (or ``contacts.add_in`` and ``update_in``) as the API, so a row is
refused with the API's own codes and texts.

An import is idempotent: a customer is keyed on its id (a row whose values it has
already changes nothing; one with other values updates it), an invoice on its number
(one that exists is left as it is when the file says the same, and refused otherwise),
a contact on its customer and email (a changed name or role updates it).
Units are written in batches, one transaction each: a batch with any refused unit is
rolled back whole, and every batch after it is only checked, so a file with errors
writes only the batches before its first error, and running it again once fixed
finishes the job without writing anything twice.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import Connection

from billportal.core import countries
from billportal.core.bounds import MAX_ID
from billportal.core.errors import NotFound, Refused, StorageUnavailable
from billportal.services import contacts
from billportal.services.audit import Actor
from billportal.services.billing import CUSTOMER_FIELDS, MAX_LINES, Books
from billportal.storage import contacts as stored_contacts
from billportal.storage import documents
from billportal.storage import imports as queries
from billportal.storage.records import Company, Contact, Customer, Invoice
from billportal.storage.store import Store

Kind = Literal["customers", "invoices", "contacts"]
KINDS: Final[tuple[Kind, ...]] = ("customers", "invoices", "contacts")
Outcome = Literal["created", "updated", "unchanged", "refused"]

CUSTOMER_COLUMNS: Final = ("id", *CUSTOMER_FIELDS)
INVOICE_COLUMNS: Final = (
    "number",
    "customer_id",
    "currency",
    "status",
    "issued_on",
    "due_on",
    "notes",
    "description",
    "quantity",
    "unit_price",
    "discount",
    "tax",
)
CONTACT_COLUMNS: Final = ("customer_id", "email", "name", "role")
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "customers": CUSTOMER_COLUMNS,
    "invoices": INVOICE_COLUMNS,
    "contacts": CONTACT_COLUMNS,
}
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "customers": ("id", "name"),
    "invoices": ("number", "customer_id", "issued_on", "description", "quantity", "unit_price"),
    "contacts": CONTACT_COLUMNS,
}
INVOICE_HEAD: Final = ("customer_id", "currency", "status", "issued_on", "due_on", "notes")  # the same on every line
_LINE_COLUMNS: Final = ("description", "quantity", "unit_price", "discount", "tax")
_AMOUNTS: Final = ("unit_price", "discount", "tax")

MAX_CELL: Final = 10_000  # characters of one cell (the longest column, notes, is text)
MAX_ROWS: Final = 500_000  # rows of one file, the CLI's bound (held in memory, about 1.5 KB a row)
MAX_FILE_BYTES: Final = 256 * 1024 * 1024  # the CLI reads the file whole
BATCH_UNITS: Final = 500  # customers, invoices or contacts per transaction
RETRIES: Final = 8  # times a batch is run again after the database could not take it
_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a row is refused: the API's code and text, and the column at fault when there is one."""

    code: str
    message: str
    column: str | None = None


@dataclass(slots=True)
class Row:
    """One data row: its line in the file (the first line, if a quoted cell spans several) and its cells."""

    line: int
    cells: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    outcome: Outcome | None = None


@dataclass(slots=True)
class Unit:
    """What one transaction step writes: a customer or a contact (one row), or an invoice (its rows, one per line)."""

    key: str
    rows: list[Row]

    @property
    def problems(self) -> list[Problem]:
        return [problem for row in self.rows for problem in row.problems]


@dataclass(slots=True)
class Parsed:
    """A readable file: its kind, its units in file order, and the SHA-256 of its bytes."""

    kind: Kind
    units: list[Unit]
    digest: str

    @property
    def rows(self) -> list[Row]:
        return sorted((row for unit in self.units for row in unit.rows), key=lambda row: row.line)


@dataclass(slots=True)
class Report:
    """What an import did: units created, updated, unchanged (all written), refused, and taken but not written.

    ``not_written`` counts the units that were fine but sat in a batch with a refused one, or after it;
    when only checking, every unit taken counts there too, and the first three say what writing would do.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    not_written: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": self.refused,
            "not_written": self.not_written,
        }


class Unreadable(Refused):
    """The file as a whole cannot be imported (its encoding, header, size or CSV syntax)."""

    def __init__(self, message: str) -> None:
        super().__init__("unreadable_file", message)


# -- reading the file --------------------------------------------------------------------------


def _text(data: bytes) -> str:
    data = data.removeprefix(_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise Unreadable(f"the file is not UTF-8 text (line {line}): save it as CSV UTF-8") from None


def _header(names: Sequence[str], kind: Kind) -> list[str]:
    columns = [name.strip().lower() for name in names]
    known = COLUMNS[kind]
    for name in columns:
        if name not in known:
            shown = name[:40] or "(empty)"
            raise Unreadable(f"unknown column {shown!r} in the header; the columns are: {', '.join(known)}")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise Unreadable(f"the header names {repeated[0]!r} twice")
    missing = [name for name in REQUIRED[kind] if name not in columns]
    if missing:
        raise Unreadable(f"the header has no {', '.join(missing)} column (required)")
    return columns


def parse(data: bytes, kind: Kind, *, max_rows: int = MAX_ROWS) -> Parsed:
    """The file's rows grouped into units, each row with the problems seen without the database; Unreadable if none."""
    if len(data) > MAX_FILE_BYTES:
        raise Unreadable(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    reader = csv.reader(io.StringIO(_text(data), newline=""), strict=True)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise Unreadable("the file is empty: its first line names the columns")
        columns = _header(header, kind)
        rows: list[Row] = []
        line = reader.line_num + 1
        for cells in reader:
            first, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            if len(rows) >= max_rows:
                raise Unreadable(f"the file has more than {max_rows:,} rows")
            rows.append(_row(first, columns, cells))
    except csv.Error as exc:
        raise Unreadable(f"line {reader.line_num}: the CSV is broken ({exc})") from None
    if not rows:
        raise Unreadable("the file has a header but no rows")
    grouped = {"customers": _customers, "invoices": _invoices, "contacts": _contacts}[kind]
    return Parsed(kind, grouped(rows), hashlib.sha256(data).hexdigest())


def _row(line: int, columns: list[str], cells: list[str]) -> Row:
    row = Row(line, {})
    if len(cells) > len(columns):
        row.problems.append(Problem("invalid_row", f"the row has {len(cells)} cells; the header names {len(columns)}"))
    for name, cell in zip(columns, cells, strict=False):
        value = cell.strip()
        if len(value) > MAX_CELL:
            row.problems.append(Problem("invalid_field", f"{name} is longer than {MAX_CELL} characters", name))
        elif value:
            row.cells[name] = value
    return row


def _customers(rows: list[Row]) -> list[Unit]:
    seen: dict[str, int] = {}
    for row in rows:
        key = row.cells.get("id", "")
        if key in seen:
            row.problems.append(Problem("duplicate_row", f"customer {key[:20]} is also on line {seen[key]}", "id"))
        seen.setdefault(key, row.line)
    return [Unit(row.cells.get("id", ""), [row]) for row in rows]


def _contacts(rows: list[Row]) -> list[Unit]:
    """One unit a row, keyed on its customer and address (written 7 or 007, Pat@ or pat@: the same contact)."""
    seen: dict[str, int] = {}
    units = []
    for row in rows:
        customer_id = row.cells.get("customer_id", "")
        key = f"{_whole(customer_id)}:{contacts.address(row.cells.get('email', ''))}"
        if key in seen:
            email = row.cells.get("email", "")[:64]
            said = f"contact {email} of customer {customer_id[:20]} is also on line {seen[key]}"
            row.problems.append(Problem("duplicate_row", said, "email"))
        seen.setdefault(key, row.line)
        units.append(Unit(key, [row]))
    return units


def _invoices(rows: list[Row]) -> list[Unit]:
    units: dict[str, Unit] = {}
    for row in rows:
        key = row.cells.get("number", "")
        unit = units.get(key)
        if unit is None:
            units[key] = Unit(key, [row])
            continue
        first = unit.rows[0]
        for name in INVOICE_HEAD:
            if name in row.cells and row.cells[name] != first.cells.get(name):
                row.problems.append(
                    Problem(
                        "invalid_field",
                        f"{name} differs from line {first.line}, the invoice's first (leave it blank or repeat it)",
                        name,
                    )
                )
        if len(unit.rows) == MAX_LINES:
            row.problems.append(Problem("invalid_field", f"a document has 1 to {MAX_LINES} lines", "lines"))
        unit.rows.append(row)
    return list(units.values())


# -- values as the API takes them ----------------------------------------------------------------


def _whole(text: str) -> int | str:
    """A whole number as an int; anything else as it is, for the rules to refuse in their own words."""
    digits = text[1:] if text[:1] == "-" else text
    if digits.isascii() and digits.isdigit() and len(digits) <= 19:
        return int(text)
    return text


def _id(text: str, name: str) -> int:
    value = _whole(text)
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise Refused("invalid_field", f"{name} must be a whole number from 1 to {MAX_ID}", name)
    return value


def _customer_values(row: Row) -> dict[str, Any]:
    if "id" not in row.cells:
        raise Refused("missing_field", "id is required", "id")
    values: dict[str, Any] = {name: value for name, value in row.cells.items() if name != "id"}
    values["id"] = _id(row.cells["id"], "id")
    return values


def _invoice_values(unit: Unit) -> dict[str, Any]:
    head = unit.rows[0].cells
    for name in REQUIRED["invoices"]:
        if name not in head and name not in _LINE_COLUMNS:
            raise Refused("missing_field", f"{name} is required", name)
    values: dict[str, Any] = {name: head[name] for name in INVOICE_HEAD if name in head}
    values["number"] = head["number"]
    values["customer_id"] = _id(head["customer_id"], "customer_id")
    lines = []
    for index, row in enumerate(unit.rows):
        for name in ("description", "quantity", "unit_price"):
            if name not in row.cells:
                raise Refused("missing_field", f"lines[{index}].{name} is required", f"lines[{index}].{name}")
        line: dict[str, Any] = {"description": row.cells["description"], "quantity": row.cells["quantity"]}
        for name in _AMOUNTS:
            if name in row.cells:
                line[name] = _whole(row.cells[name])
        lines.append(line)
    values["lines"] = lines
    return values


# -- writing one unit ----------------------------------------------------------------------------


def _same_state(customer: Customer, country: str, state: str) -> bool:
    return bool(country) and countries.region(country, state) == customer.state


def _customers_wanted(units: Sequence[Unit]) -> dict[int, tuple[Unit, dict[str, Any]]]:
    values: dict[int, tuple[Unit, dict[str, Any]]] = {}
    for unit in units:
        if not unit.problems:
            try:
                wanted = _customer_values(unit.rows[0])
            except Refused as refused:
                _attach(unit, refused)
                continue
            if wanted["id"] in values:  # the same id written another way (007 and 7)
                first = values[wanted["id"]][0].rows[0].line
                _attach(unit, Refused("duplicate_row", f"customer {wanted['id']} is also on line {first}", "id"))
                continue
            values[wanted["id"]] = (unit, wanted)
    return values


def _customers_batch(books: Books, units: Sequence[Unit]) -> None:
    """Write a batch of customers: the new ones in one statement, then each existing one that changes."""
    values = _customers_wanted(units)
    existing = documents.customers_among(books.conn, books.company_id, list(values))
    new = [(unit, wanted) for customer_id, (unit, wanted) in values.items() if customer_id not in existing]
    made = books.create_customers([wanted for _, wanted in new])
    later: list[tuple[Unit, dict[str, Any]]] = []
    for (unit, wanted), result in zip(new, made, strict=True):
        if isinstance(result, Refused):
            if result.code == "customer_exists":
                later.append((unit, wanted))  # made meanwhile by a concurrent import: compared below
            else:
                _attach(unit, result)
        else:
            unit.rows[0].outcome = "created"
    for customer_id, (unit, wanted) in values.items():
        before = existing.get(customer_id)
        if before is not None:
            _settle_customer(books, unit, before, wanted)
    for unit, wanted in later:
        before = documents.customer(books.conn, books.company_id, wanted["id"])
        if before is None:
            _attach(unit, Refused("conflict", "customers are being created at the same time; retry"))
        else:
            _settle_customer(books, unit, before, wanted)


def _settle_customer(books: Books, unit: Unit, existing: Customer, values: dict[str, Any]) -> None:
    try:
        unit.rows[0].outcome = _update_customer(books, existing, values)
    except Refused as refused:
        _attach(unit, refused)


def _update_customer(books: Books, existing: Customer, values: dict[str, Any]) -> Outcome:
    customer_id: int = values["id"]
    changes = {name: value for name, value in values.items() if name != "id" and getattr(existing, name) != value}
    if "state" in changes and _same_state(existing, values.get("country", existing.country), changes["state"]):
        del changes["state"]
    if not changes:
        return "unchanged"
    books.update_customer(customer_id, changes)
    return "updated"


def _same_invoice(invoice: Invoice, values: dict[str, Any]) -> bool:
    lines = [(line.description, line.quantity, line.unit_price, line.discount, line.tax) for line in invoice.lines]
    wanted = [
        (line["description"], line["quantity"], line.get("unit_price"), line.get("discount", 0), line.get("tax", 0))
        for line in values["lines"]
    ]
    return (
        invoice.customer_id == values["customer_id"]
        and invoice.issued_on == values["issued_on"]
        and invoice.due_on == values.get("due_on")
        and invoice.notes == values.get("notes", "")
        and values.get("currency", invoice.currency) == invoice.currency
        and lines == wanted
    )


def _existing_invoice(books: Books, number: str) -> Invoice | None:
    return queries.invoices_numbered(books.conn, books.company_id, [number]).get(number)


def _invoices_batch(books: Books, units: Sequence[Unit]) -> None:
    """Write a batch of invoices: the new ones together; one whose number exists must be the same invoice."""
    values: dict[str, tuple[Unit, dict[str, Any]]] = {}
    for unit in units:
        if not unit.problems:
            try:
                wanted = _invoice_values(unit)
            except Refused as refused:
                _attach(unit, refused)
                continue
            values[wanted["number"]] = (unit, wanted)
    existing = queries.invoices_numbered(books.conn, books.company_id, list(values))
    new = [(unit, wanted) for number, (unit, wanted) in values.items() if number not in existing]
    made = books.create_invoices([wanted for _, wanted in new])
    compare: list[tuple[Unit, dict[str, Any], Invoice | None]] = [
        (*values[number], invoice) for number, invoice in existing.items() if number in values
    ]
    for (unit, wanted), result in zip(new, made, strict=True):
        if isinstance(result, Refused):
            if result.code == "number_taken":  # made meanwhile by a concurrent import
                compare.append((unit, wanted, _existing_invoice(books, wanted["number"])))
            else:
                _attach(unit, result)
        else:
            _done(unit, "created")
    for unit, wanted, invoice in compare:
        try:
            _done(unit, _compare_invoice(invoice, wanted))
        except Refused as refused:
            _attach(unit, refused)


def _done(unit: Unit, outcome: Outcome) -> None:
    for row in unit.rows:
        row.outcome = outcome


def _compare_invoice(existing: Invoice | None, values: dict[str, Any]) -> Outcome:
    if existing is None:
        raise Refused("conflict", "invoices are being created at the same time; retry")
    if _same_invoice(existing, values):
        return "unchanged"
    raise Refused(
        "invoice_exists",
        f"invoice {values['number'][:64]!r} exists with other customer, dates, notes or lines; it is left as it is",
        "number",
    )


@dataclass(slots=True)
class _Writer:
    """What a batch writes with: the transaction's ``Books``, and for contacts the company and who imports."""

    books: Books
    company: Company
    actor: Actor
    ended: list[bytes]  # the sessions of contacts whose role changed: their Redis copies go once committed


def _contacts_batch(writer: _Writer, units: Sequence[Unit]) -> None:
    """Write a batch of contacts, each through services/contacts.py: new ones added, changed ones updated."""
    conn, company = writer.books.conn, writer.company
    wanted: dict[tuple[int, str], tuple[Unit, dict[str, str]]] = {}
    for unit in units:
        if unit.problems:
            continue
        try:
            customer_id, values = _contact_values(unit.rows[0])
        except Refused as refused:
            _attach(unit, refused)
            continue
        wanted[(customer_id, values["email"])] = (unit, values)
    existing = stored_contacts.by_keys(conn, company.id, list(wanted))
    for (customer_id, email), (unit, values) in wanted.items():
        try:
            unit.rows[0].outcome = _write_contact(writer, customer_id, values, existing.get((customer_id, email)))
        except NotFound as missing:  # no such customer (the API's 404): said on the row's customer_id
            _attach(unit, Refused(missing.code, missing.message, "customer_id"))
        except Refused as refused:
            _attach(unit, refused)


def _contact_values(row: Row) -> tuple[int, dict[str, str]]:
    """The row's customer id, and its contact's fields checked by services/contacts.py."""
    values = contacts.clean({name: row.cells[name] for name in ("name", "email", "role") if name in row.cells})
    if "customer_id" not in row.cells:
        raise Refused("missing_field", "customer_id is required", "customer_id")
    return _id(row.cells["customer_id"], "customer_id"), values


def _write_contact(writer: _Writer, customer_id: int, values: dict[str, str], before: Contact | None) -> Outcome:
    conn, company, now = writer.books.conn, writer.company, writer.books.now
    if before is None:
        try:
            contacts.add_in(conn, company, customer_id, values, actor=writer.actor, now=now)
        except Refused as refused:
            if refused.code != "contact_exists":
                raise
        else:
            return "created"
        # added meanwhile by a concurrent import of the same file: compared below
        key = (customer_id, values["email"])
        before = stored_contacts.by_keys(conn, company.id, [key]).get(key)
        if before is None:
            raise Refused("conflict", "contacts are being added at the same time; retry") from None
    changes = {name: values[name] for name in ("name", "role") if getattr(before, name) != values[name]}
    if not changes:
        return "unchanged"
    _, ended = contacts.update_in(conn, company, customer_id, before.id, changes, actor=writer.actor, now=now)
    writer.ended.extend(ended)
    return "updated"


def _attach(unit: Unit, refused: Refused) -> None:
    """Put a refusal on the row it is about: ``lines[i]...`` on the invoice's i-th row, the rest on its first."""
    target = unit.rows[0]
    where = refused.field or ""
    if where.startswith("lines["):
        index = where[6 : where.find("]")]
        if index.isdigit() and int(index) < len(unit.rows):
            target = unit.rows[int(index)]
    column = where.rpartition(".")[2] if where.startswith("lines[") else where or None
    target.problems.append(Problem(refused.code, refused.message, column))


# -- batches -------------------------------------------------------------------------------------


class _RollBack(Exception):
    """Ends a batch's transaction without committing it."""


def _check_batch(writer: _Writer, kind: Kind, units: Sequence[Unit]) -> bool:
    """Write the batch's units (in the open transaction); whether every one was taken."""
    if kind == "customers":
        _customers_batch(writer.books, units)
    elif kind == "invoices":
        _invoices_batch(writer.books, units)
    else:
        _contacts_batch(writer, units)
    return not any(unit.problems for unit in units)


async def run(
    store: Store,
    company: Company,
    parsed: Parsed,
    *,
    now: int,
    write: bool,
    actor: Actor,
    batch_units: int = BATCH_UNITS,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Import ``parsed`` (``write``), or only check it; each row gets its outcome or its problems.

    Each batch is one transaction; with ``write``, a batch is committed only if every unit of it
    was taken, and after a batch with a refused unit the rest is checked, not written. ``actor``
    is who the audit trail names for each contact added or changed.
    """
    report = Report()
    writing = write
    kind = parsed.kind
    for start in range(0, len(parsed.units), batch_units):
        batch = parsed.units[start : start + batch_units]
        ended: list[bytes] = []

        def work(
            conn: Connection, batch: Sequence[Unit] = batch, commit: bool = writing, ended: list[bytes] = ended
        ) -> None:
            ended.clear()  # a batch run again starts over
            writer = _Writer(Books(conn, company.id, now, email=False), company, actor, ended)
            if not _check_batch(writer, kind, batch) or not commit:
                raise _RollBack

        committed = await _batch(store, work, batch)
        if committed:
            await contacts.forget_sessions(store, ended)
        writing = writing and committed
        for unit in batch:
            _count(report, unit, committed, counted=committed or not write)
        if progress is not None:
            progress(sum(len(unit.rows) for unit in batch))
    return report


async def _batch(store: Store, work: Callable[[Connection], None], batch: Sequence[Unit]) -> bool:
    """Run one batch's transaction; whether it committed. One the database could not take is run again.

    Concurrent imports of the same rows wait on each other's batches, and PostgreSQL gives up waiting
    after its lock timeout: the batch was rolled back, and running it again (idempotent) finds the
    other's rows written.
    """
    seen = [(row, len(row.problems)) for unit in batch for row in unit.rows]
    for attempt in range(RETRIES + 1):
        for row, problems in seen:
            del row.problems[problems:]
            row.outcome = None
        try:
            await store.write(work)
        except _RollBack:
            return False
        except StorageUnavailable:
            if attempt == RETRIES:
                raise
            await asyncio.sleep(min(0.2 * 2**attempt, 3.0))
        else:
            return True
    raise AssertionError("unreachable")


def _count(report: Report, unit: Unit, committed: bool, *, counted: bool) -> None:
    if unit.problems:
        report.refused += 1
        for row in unit.rows:
            row.outcome = "refused"
        return
    outcome = unit.rows[0].outcome
    if not committed:
        report.not_written += 1
    if outcome == "created":
        report.created += counted
    elif outcome == "updated":
        report.updated += counted
    else:
        report.unchanged += counted


def errors(parsed: Parsed) -> list[str]:
    """One line per problem, in file order: ``line N: column: message``."""
    said = []
    for row in parsed.rows:
        for problem in row.problems:
            where = f"{problem.column}: " if problem.column else ""
            said.append(f"line {row.line}: {where}{problem.message}")
    return said


# -- uploads kept between the dashboard's preview and the admin's confirmation ---------------------

UPLOAD_SECONDS: Final = 30 * 60
MAX_UPLOAD_ROWS: Final = 2_000  # the dashboard's bound: one transaction that the event loop waits for


def _upload_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def keep_upload(store: Store, *, session_hash: bytes, company_id: int, kind: Kind, data: bytes, now: int) -> str:
    """Keep an upload for its admin's session and company (for UPLOAD_SECONDS); the random id that names it."""
    token = secrets.token_urlsafe(24)
    await store.write(
        lambda conn: queries.keep_upload(
            conn,
            id_hash=_upload_hash(token),
            session_hash=session_hash,
            company_id=company_id,
            kind=kind,
            filename="",
            data=data,
            now=now,
            expires_at=now + UPLOAD_SECONDS,
        )
    )
    return token


async def kept_upload(
    store: Store, token: str, *, session_hash: bytes, company_id: int, now: int
) -> queries.Upload | None:
    """The upload ``token`` names, if it is this session's for this company and has not expired."""
    if not 20 <= len(token) <= 64:
        return None
    return await store.read(
        lambda conn: queries.upload(
            conn, id_hash=_upload_hash(token), session_hash=session_hash, company_id=company_id, now=now
        )
    )


async def drop_upload(store: Store, token: str, *, session_hash: bytes) -> bool:
    return await store.write(
        lambda conn: queries.drop_upload(conn, id_hash=_upload_hash(token), session_hash=session_hash)
    )
