"""Billing > Invoices, Credit notes, Estimates and Payments: lists, pages, PDFs, CSV, and every change.

What is typed is checked by the API's own shape of the document (web/objects.py), then each change
goes through the one write model (``Books``, services/billing.py), in one transaction with its audit
entry; Books writes the webhook events, as it does for the API. The shape's ``Invalid`` and Books'
``Refused`` carry the API's messages, shown beside the field they name.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Final
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from billportal.core import i18n
from billportal.core.clock import human_time, iso_utc, local_date
from billportal.core.errors import NotFound, Refused
from billportal.core.i18n import N_
from billportal.dashboard.auth import AdminVisit, admin
from billportal.dashboard.document_forms import (
    ID_HINT,
    LINE_FIELDS,
    LINE_ROWS,
    MAX_ROWS,
    MONEY_HINT,
    ListQuery,
    Typed,
    amount_of,
    form_fields,
    id_of,
    line_values,
    money_text,
    optional_day,
    read_lines,
    same_lines,
)
from billportal.dashboard.sign_in_log import safe_cell
from billportal.dashboard.views import Confirmation, Dashboard
from billportal.services import audit
from billportal.services.billing import PAYMENT_METHODS, Books
from billportal.storage.document_lists import DocumentFilters, document_page
from billportal.storage.documents import Scope
from billportal.storage.records import Company, Invoice, Payment
from billportal.web.errors import error_page
from billportal.web.forms import Form
from billportal.web.labels import credit_note_state, download_name, estimate_state, method_label, status_label
from billportal.web.objects import CREDIT_NOTE, ESTIMATE, INVOICE, PAYMENT
from billportal.web.shapes import Invalid, Shape, check_object
from billportal.web.templates import NO_STORE

PAGE_SIZE: Final = 25
CSV_BATCH: Final = 1000
MAX_APPLIED: Final = 50  # open invoices a payment's form offers to apply it to


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of document as the dashboard shows it."""

    kind: str
    path: str
    title: str  # "Credit notes" (marked; translated where shown)
    label: str  # "Credit note"
    statuses: tuple[str, ...]
    issued: str  # the status a draft is issued as ("" for payments)
    file: str  # the PDF's name: invoice, credit-note, estimate, receipt


KINDS: Final = {
    "invoice": Kind(
        "invoice", "/invoices", N_("Invoices"), N_("Invoice"), ("draft", "open", "paid", "voided"), "open", "invoice"
    ),
    "credit_note": Kind(
        "credit_note",
        "/credit-notes",
        N_("Credit notes"),
        N_("Credit note"),
        ("draft", "open", "applied", "voided"),
        "open",
        "credit-note",
    ),
    "estimate": Kind(
        "estimate",
        "/estimates",
        N_("Estimates"),
        N_("Estimate"),
        ("draft", "sent", "approved", "declined", "voided"),
        "sent",
        "estimate",
    ),
    "payment": Kind("payment", "/payments", N_("Payments"), N_("Payment"), (), "", "receipt"),
}
_BY_PATH: Final = {k.path.strip("/"): k for k in KINDS.values()}
# The fields of each kind's form besides the lines, as Books names them.
_FIELDS: Final = {
    "invoice": ("number", "currency", "issued_on", "due_on", "notes"),
    "credit_note": ("number", "currency", "issued_on", "notes"),
    "estimate": ("number", "currency", "issued_on", "expires_on", "notes"),
    "payment": ("number", "received_on", "method", "reference"),
}
SHAPES: Final[dict[str, Shape]] = {
    "invoice": INVOICE,
    "credit_note": CREDIT_NOTE,
    "estimate": ESTIMATE,
    "payment": PAYMENT,
}
_NOTES_ONLY: Final = {"invoice": ("paid", "voided"), "credit_note": ("voided",), "estimate": ("approved", "voided")}
_DONE: Final = {
    "created": N_("%(label)s %(number)s is saved."),
    "issued": N_("%(label)s %(number)s is issued: the customer sees it in the portal."),
    "saved": N_("The changes to %(label)s %(number)s are saved."),
    "unchanged": N_("Nothing changed."),
    "voided": N_("%(label)s %(number)s is voided."),
    "recorded": N_("Payment %(number)s is recorded."),
}
_COLUMNS: Final = {
    "invoice": (
        "number",
        "id",
        "customer_id",
        "status",
        "issued_on",
        "due_on",
        "currency",
        "subtotal",
        "discount",
        "tax",
        "total",
        "amount_paid",
        "amount_credited",
        "balance",
        "notes",
    ),
    "credit_note": (
        "number",
        "id",
        "customer_id",
        "status",
        "issued_on",
        "invoice_id",
        "currency",
        "subtotal",
        "tax",
        "total",
        "notes",
    ),
    "estimate": (
        "number",
        "id",
        "customer_id",
        "status",
        "issued_on",
        "expires_on",
        "currency",
        "subtotal",
        "tax",
        "total",
        "approved_by",
        "approved_at",
        "declined_at",
        "notes",
    ),
    "payment": (
        "number",
        "id",
        "customer_id",
        "received_on",
        "method",
        "method_detail",
        "reference",
        "currency",
        "amount",
        "amount_refunded",
        "gateway",
        "gateway_payment_id",
    ),
}
_MONEY_COLUMNS: Final = frozenset(
    ("subtotal", "discount", "tax", "total", "amount_paid", "amount_credited", "balance", "amount", "amount_refunded")
)


def pdf() -> ModuleType:
    """The PDF module, loaded on the first PDF (fpdf2 brings Pillow and NumPy)."""
    from billportal.web import pdf as module

    return module


def csv_cells(rows: Iterable[Iterable[object]]) -> str:
    """CSV text, every cell through the sign-in log's formula guard."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerows((safe_cell(value) for value in row) for row in rows)
    return buffer.getvalue()


def _cell(document: Any, column: str) -> object:
    value = getattr(document, column)
    if column in _MONEY_COLUMNS:
        return money_text(value, document.currency)
    if column in ("approved_at", "declined_at"):
        return iso_utc(value)
    return value


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 20 else None


def _kind(request: Request) -> Kind:
    return _BY_PATH[request.url.path.strip("/").split("/")[0].removesuffix(".csv")]


def _document_id(request: Request) -> int:
    value: int = request.path_params[f"{_kind(request).kind}_id"]
    return value


class DocumentPages(Dashboard):
    """The documents' lists, pages, PDFs and forms."""

    def _today(self, company: Company) -> str:
        return local_date(self.context.clock(), company.time_zone).isoformat()

    async def _get(self, kind: Kind, company: Company, document_id: int) -> Any:
        return await self.context.billing.get(kind.kind, Scope(company.id), document_id)

    def _to(self, kind: Kind, document_id: int, done: str) -> Response:
        return RedirectResponse(f"{kind.path}/{document_id}?done={done}", status_code=303, headers=dict(NO_STORE))

    async def _write(
        self,
        company: Company,
        visit: AdminVisit,
        action: str,
        work: Callable[[Books], Any],
        detail: Callable[[Any], str],
    ) -> Any:
        """``work`` on the books, and its audit entry, in one transaction."""
        now = self.context.clock()

        def run(books: Books) -> Any:
            done = work(books)
            audit.record_in(books.conn, visit.actor, action, now, company_ids=[company.id], detail=detail(done))
            return done

        return await self.context.billing.write(company.id, run, now=now)

    # -- lists and their CSV ----------------------------------------------------------------------

    @admin(area="billing")
    async def document_list(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        kind = _kind(request)
        today = self._today(company)
        query = ListQuery.parse(dict(request.query_params), kind.statuses, kind.kind, today)
        before = _before(request)
        rows: list[Any] = []
        more = False
        if not query.error:
            rows, more = await self.context.store.read(
                lambda conn: document_page(
                    conn, kind.kind, company.id, query.filters, limit=PAGE_SIZE, before_id=before
                )
            )
        params = query.query()
        suffix = "?" + urlencode(params) if params else ""
        return self._page(
            request,
            visit,
            "dashboard/documents/list.html",
            status_code=400 if query.error else 200,
            title=i18n.gettext(kind.title),
            section=kind.kind,
            kind=kind,
            rows=rows,
            shown=query.shown,
            error=query.error,
            today=today,
            newest=f"{kind.path}{suffix}" if before is not None else "",
            older=f"{kind.path}?{urlencode({**params, 'before': rows[-1].id})}" if rows and more else "",
            csv_url=f"{kind.path}.csv{suffix}",
            deleted=request.query_params.get("deleted") == "1",
            status_label=status_label,
            method_label=method_label,
            estimate_state=estimate_state,
            credit_note_state=credit_note_state,
        )

    @admin(area="billing")
    async def document_csv(self, request: Request, _visit: AdminVisit, company: Company) -> Response:
        kind = _kind(request)
        query = ListQuery.parse(dict(request.query_params), kind.statuses, kind.kind, self._today(company))
        if query.error:
            return error_page(400, query.error)
        day = datetime.fromtimestamp(self.context.clock(), UTC).strftime("%Y%m%d")
        headers = dict(NO_STORE)
        name = kind.title.lower().replace(" ", "-")
        headers["Content-Disposition"] = f'attachment; filename="{name}-{company.username}-{day}.csv"'
        return StreamingResponse(
            self._csv(kind, company.id, query.filters), media_type="text/csv; charset=utf-8", headers=headers
        )

    async def _csv(self, kind: Kind, company_id: int, filters: DocumentFilters) -> AsyncIterator[str]:
        columns = _COLUMNS[kind.kind]
        yield csv_cells([columns])
        before: int | None = None
        while True:
            rows, more = await self.context.store.read(
                functools.partial(
                    document_page,
                    kind=kind.kind,
                    company_id=company_id,
                    filters=filters,
                    limit=CSV_BATCH,
                    before_id=before,
                )
            )
            yield csv_cells([_cell(row, column) for column in columns] for row in rows)
            if not more:
                return
            before = rows[-1].id

    # -- a document and its PDF -------------------------------------------------------------------------

    @admin(area="billing")
    async def document_detail(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        kind = _kind(request)
        document = await self._get(kind, company, _document_id(request))
        if document is None:
            return _no_such(kind)
        billing = self.context.billing
        customer = await billing.customer(company.id, document.customer_id)
        today = self._today(company)
        payments: list[tuple[Payment, int]] = []
        credit_notes: list[Any] = []
        invoice = None
        if kind.kind == "invoice":
            payments, credit_notes = await billing.settlements(Scope(company.id), document.id)
        if kind.kind == "credit_note" and document.invoice_id is not None:
            invoice = await billing.get("invoice", Scope(company.id), document.invoice_id)
        done = request.query_params.get("done", "")
        message = i18n.gettext(_DONE.get(done, "")) % {"label": i18n.gettext(kind.label), "number": document.number}
        return self._page(
            request,
            visit,
            "dashboard/documents/detail.html",
            title=f"{i18n.gettext(kind.label)} {document.number}",
            section=kind.kind,
            kind=kind,
            doc=document,
            customer=customer,
            today=today,
            payments=payments,
            credit_notes=credit_notes,
            invoice=invoice,
            done=message,
            notes_only=document.status in _NOTES_ONLY.get(kind.kind, ()),
            approved_at=human_time(getattr(document, "approved_at", None), company.time_zone),
            declined_at=human_time(getattr(document, "declined_at", None), company.time_zone),
            status_label=status_label,
            estimate_state=estimate_state,
            credit_note_state=credit_note_state,
        )

    @admin(area="billing")
    async def document_pdf(self, request: Request, _visit: AdminVisit, company: Company) -> Response:
        kind = _kind(request)
        document = await self._get(kind, company, _document_id(request))
        customer = None if document is None else await self.context.billing.customer(company.id, document.customer_id)
        if document is None or customer is None:
            return _no_such(kind)
        today = self._today(company)
        module = pdf()
        content: bytes
        if kind.kind == "invoice":
            payments, notes = await self.context.billing.settlements(Scope(company.id), document.id)
            content = await run_in_threadpool(
                module.invoice_pdf, company, customer, document, payments=payments, credit_notes=notes, today=today
            )
        elif kind.kind == "credit_note":
            invoice = None
            if document.invoice_id is not None:
                invoice = await self.context.billing.get("invoice", Scope(company.id), document.invoice_id)
            number = invoice.number if invoice is not None else None
            content = await run_in_threadpool(module.credit_note_pdf, company, customer, document, number)
        elif kind.kind == "estimate":
            content = await run_in_threadpool(module.estimate_pdf, company, customer, document, today)
        else:
            content = await run_in_threadpool(module.receipt_pdf, company, customer, document)
        headers = dict(NO_STORE)
        headers["Content-Disposition"] = f'attachment; filename="{download_name(kind.file, document.number)}"'
        return Response(content, media_type="application/pdf", headers=headers)

    # -- invoices, credit notes and estimates: the form ---------------------------------------------

    def _form_page(
        self,
        request: Request,
        visit: AdminVisit,
        kind: Kind,
        typed: Typed,
        *,
        document: Any = None,
        rows: int = LINE_ROWS,
        status_code: int = 200,
    ) -> Response:
        editing = document is not None
        return self._page(
            request,
            visit,
            "dashboard/documents/form.html",
            status_code=status_code,
            title=(
                i18n.gettext("Edit %(label)s %(number)s")
                % {"label": i18n.gettext(kind.label).lower(), "number": document.number}
                if editing
                else i18n.gettext("New %(label)s") % {"label": i18n.gettext(kind.label).lower()}
            ),
            section=kind.kind,
            kind=kind,
            doc=document,
            values=typed.shown,
            errors=typed.errors,
            rows=range(1, rows + 1),
            row_count=rows,
            line_fields=LINE_FIELDS,
            notes_only=editing and document.status in _NOTES_ONLY.get(kind.kind, ()),
            action=f"{kind.path}/{document.id}/edit" if editing else f"{kind.path}/new",
        )

    @admin(area="billing")
    async def new_document(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        kind = _kind(request)
        params = request.query_params
        shown = {
            "customer_id": params.get("customer_id", "")[:20],
            "invoice_id": params.get("invoice_id", "")[:20],
            "issued_on": self._today(company),
        }
        return self._form_page(request, visit, kind, Typed(shown))

    @admin(form=True, max_fields=form_fields(LINE_ROWS), area="billing")
    async def create_document(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        kind = _kind(request)
        typed = await self._typed_document(form, kind, company, rows=LINE_ROWS, creating=True)
        if typed.errors:
            return self._form_page(request, visit, kind, typed, status_code=400)
        create = {"invoice": Books.create_invoice, "credit_note": Books.create_credit_note}.get(
            kind.kind, Books.create_estimate
        )
        try:
            values = check_object(typed.values, SHAPES[kind.kind].for_create())
            document = await self._write(
                company,
                visit,
                "document.created",
                lambda books: create(books, values),
                lambda done: f"{kind.label} {done.number} ({done.status})",
            )
        except (Invalid, Refused) as refused:
            typed.refused(refused)
            return self._form_page(request, visit, kind, typed, status_code=400)
        issued = document.status in (kind.issued, "applied")
        return self._to(kind, document.id, "issued" if issued else "created")

    async def _typed_document(
        self, form: Form, kind: Kind, company: Company, *, rows: int, creating: bool, document: Any = None
    ) -> Typed:
        """The form as Books takes it: on an edit, only what changed."""
        names = (*_FIELDS[kind.kind], "customer_id", "invoice_id", "status")
        typed = Typed({name: form.text(name, 10_001).strip() for name in names if name in form})
        shown, values = typed.shown, typed.values
        if creating:
            customer_id = id_of(shown.get("customer_id", ""))
            if customer_id is None:
                typed.errors["customer_id"] = i18n.gettext("Enter a customer id, a positive whole number.")
            values["customer_id"] = customer_id or 0
            values["issued_on"] = ""  # Books says when it is missing
            wanted = shown.get("status", "draft")
            values["status"] = wanted if wanted in ("draft", kind.issued) else "draft"
            if kind.kind == "credit_note" and shown.get("invoice_id"):
                invoice_id = id_of(shown["invoice_id"])
                if invoice_id is None:
                    typed.errors["invoice_id"] = i18n.gettext(ID_HINT)
                values["invoice_id"] = invoice_id
        customer = await self.context.billing.customer(company.id, values.get("customer_id") or 0)
        currency = shown.get("currency", "") or (document.currency if document else "")
        currency = currency or (customer.currency if customer else company.default_currency)
        if shown.get("currency"):
            values["currency"] = shown["currency"]
        for name in _FIELDS[kind.kind]:
            if name == "currency" or name not in shown:
                continue
            value: Any = shown[name]
            if name in ("due_on", "expires_on"):
                value = optional_day(value)
            if name == "number" and not value:
                continue  # the next free number (or, on an edit, the one it has)
            values[name] = value
        lines = read_lines(form, typed, rows, currency)
        sent_lines = any(name.startswith("line") for name in form)  # an edit without line rows keeps the lines
        if document is None or (sent_lines and not same_lines(lines, document.lines)):
            values["lines"] = lines
        if document is not None:
            kept = {name: value for name, value in values.items() if getattr(document, name, None) != value}
            typed.values = kept
        return typed

    @admin(area="billing")
    async def edit_document(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        kind = _kind(request)
        document = await self._get(kind, company, _document_id(request))
        if document is None:
            return _no_such(kind)
        shown = {name: getattr(document, name) or "" for name in _FIELDS[kind.kind]}
        shown.update(line_values(document.lines, document.currency))
        rows = min(MAX_ROWS, max(LINE_ROWS, len(document.lines) + 2))
        return self._form_page(request, visit, kind, Typed(shown), document=document, rows=rows)

    @admin(form=True, max_fields=form_fields(MAX_ROWS), area="billing")
    async def save_document(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        kind = _kind(request)
        document = await self._get(kind, company, _document_id(request))
        if document is None:
            return _no_such(kind)
        rows = min(MAX_ROWS, max(LINE_ROWS, len(document.lines) + 2))
        if document.status in _NOTES_ONLY.get(kind.kind, ()):
            typed = Typed({"notes": form.text("notes", 10_001)})
            typed.values = {"notes": typed.shown["notes"]} if typed.shown["notes"] != document.notes else {}
        else:
            typed = await self._typed_document(form, kind, company, rows=rows, creating=False, document=document)
        if typed.errors:
            return self._form_page(request, visit, kind, typed, document=document, rows=rows, status_code=400)
        if not typed.values:
            return self._to(kind, document.id, "unchanged")
        update = {"invoice": Books.update_invoice, "credit_note": Books.update_credit_note}.get(
            kind.kind, Books.update_estimate
        )
        try:
            changes = check_object(typed.values, SHAPES[kind.kind].for_update())
            await self._write(
                company,
                visit,
                "document.changed",
                lambda books: update(books, document.id, changes),
                lambda _done: f"{kind.label} {document.number}: " + _changes(document, changes),
            )
        except NotFound:
            return _no_such(kind)
        except (Invalid, Refused) as refused:
            typed.refused(refused)
            return self._form_page(request, visit, kind, typed, document=document, rows=rows, status_code=400)
        return self._to(kind, document.id, "saved")

    # -- issue, void, delete ----------------------------------------------------------------------------

    @admin(form=True, area="billing")
    async def issue_document(self, request: Request, visit: AdminVisit, company: Company, _form: Form) -> Response:
        kind = _kind(request)
        document = await self._get(kind, company, _document_id(request))
        if document is None or not kind.issued:
            return _no_such(kind)
        if document.status != "draft":
            return error_page(
                409,
                i18n.gettext("This %(label)s is %(status)s already: only a draft is issued.")
                % {"label": i18n.gettext(kind.label).lower(), "status": document.status},
            )
        update = {"invoice": Books.update_invoice, "credit_note": Books.update_credit_note}.get(
            kind.kind, Books.update_estimate
        )
        try:
            await self._write(
                company,
                visit,
                "document.issued",
                lambda books: update(books, document.id, {"status": kind.issued}),
                lambda _done: f"{kind.label} {document.number}: {document.status} -> {kind.issued}",
            )
        except NotFound:
            return _no_such(kind)
        except Refused as refused:
            return error_page(409, refused.message)
        return self._to(kind, document.id, "issued")

    @admin(form=True, area="billing")
    async def void_document(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        kind = _kind(request)
        document = await self._get(kind, company, _document_id(request))
        if document is None or kind.kind == "payment":
            return _no_such(kind)
        if form.get("confirm") != "yes":
            return self._confirm(request, visit, _void_question(kind, document))
        void = {"invoice": Books.void_invoice, "credit_note": Books.void_credit_note}.get(
            kind.kind, Books.void_estimate
        )
        try:
            await self._write(
                company,
                visit,
                "document.voided",
                lambda books: void(books, document.id),
                lambda _done: f"{kind.label} {document.number}",
            )
        except NotFound:
            return _no_such(kind)
        except Refused as refused:
            return error_page(409, refused.message)
        return self._to(kind, document.id, "voided")

    @admin(form=True, area="billing")
    async def delete_document(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        kind = _kind(request)
        document = await self._get(kind, company, _document_id(request))
        if document is None:
            return _no_such(kind)
        if form.get("confirm") != "yes":
            return self._confirm(request, visit, _delete_question(kind, document))
        delete = {
            "invoice": Books.delete_invoice,
            "credit_note": Books.delete_credit_note,
            "estimate": Books.delete_estimate,
        }.get(kind.kind, Books.delete_payment)
        try:
            await self._write(
                company,
                visit,
                "document.deleted",
                lambda books: delete(books, document.id),
                lambda _done: f"{kind.label} {document.number}",
            )
        except NotFound:
            return _no_such(kind)
        except Refused as refused:
            return error_page(409, refused.message)
        return RedirectResponse(f"{kind.path}?deleted=1", status_code=303, headers=dict(NO_STORE))

    # -- payments: record one offline, change its details ---------------------------------------------

    async def _open_invoices(self, company: Company, customer_id: int | None) -> list[Invoice]:
        if customer_id is None:
            return []
        filters = DocumentFilters(status="open", customer_id=customer_id)
        found, _ = await self.context.store.read(
            lambda conn: document_page(conn, "invoice", company.id, filters, limit=MAX_APPLIED)
        )
        return [invoice for invoice in found if invoice.balance > 0]

    async def _payment_form(
        self, request: Request, visit: AdminVisit, company: Company, typed: Typed, *, status_code: int = 200
    ) -> Response:
        shown = typed.shown
        customer_id = id_of(shown.get("customer_id", ""))
        customer = await self.context.billing.customer(company.id, customer_id) if customer_id else None
        invoices = await self._open_invoices(company, customer.id if customer else None)
        wanted = id_of(shown.get("invoice_id", ""))
        for invoice in invoices:  # from an invoice's page: what it owes, to begin with
            if invoice.id == wanted and f"apply_{invoice.id}" not in shown:
                shown[f"apply_{invoice.id}"] = money_text(invoice.balance, invoice.currency)
                shown.setdefault("amount", shown[f"apply_{invoice.id}"])
        shown.setdefault("received_on", self._today(company))
        return self._page(
            request,
            visit,
            "dashboard/documents/payment_form.html",
            status_code=status_code,
            title=i18n.gettext("Record a payment"),
            section="payment",
            values=shown,
            errors=typed.errors,
            customer=customer,
            invoices=invoices,
            methods=PAYMENT_METHODS,
            method_label=method_label,
        )

    @admin(area="billing")
    async def new_payment(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        wanted = {name: request.query_params.get(name, "")[:20] for name in ("customer_id", "invoice_id")}
        return await self._payment_form(request, visit, company, Typed(wanted))

    @admin(form=True, max_fields=MAX_APPLIED + 12, area="billing")
    async def record_payment(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        names = ("customer_id", "number", "currency", "received_on", "method", "reference", "amount")
        typed = Typed({name: form.text(name, 200).strip() for name in names})
        shown = typed.shown
        shown["customer_id"] = shown["customer_id"] or form.text("payer_id", 40).strip()  # the form without one
        customer_id = id_of(shown["customer_id"])
        customer = await self.context.billing.customer(company.id, customer_id) if customer_id else None
        if customer is None:
            typed.errors["customer_id"] = i18n.gettext("Enter the id of a customer of yours.")
            return await self._payment_form(request, visit, company, typed, status_code=400)
        currency = shown["currency"] or customer.currency
        values: dict[str, Any] = {
            "customer_id": customer.id,
            "received_on": shown["received_on"],
            "method": shown["method"],
            "reference": shown["reference"],
        }
        if shown["number"]:
            values["number"] = shown["number"]
        if shown["currency"]:
            values["currency"] = shown["currency"]
        try:
            values["amount"] = amount_of(shown["amount"], currency)
        except ValueError:
            typed.errors["amount"] = i18n.gettext(MONEY_HINT)
        applications = []
        for invoice in await self._open_invoices(company, customer.id):
            text = form.text(f"apply_{invoice.id}", 40).strip()
            shown[f"apply_{invoice.id}"] = text
            if not text:
                continue
            try:
                applications.append({"invoice_id": invoice.id, "amount": amount_of(text, currency)})
                typed.applied.append(invoice.id)
            except ValueError:
                typed.errors[f"apply_{invoice.id}"] = i18n.gettext(MONEY_HINT)
        values["applications"] = applications
        if typed.errors:
            return await self._payment_form(request, visit, company, typed, status_code=400)
        try:
            checked = check_object(values, PAYMENT.for_create())
            payment = await self._write(
                company,
                visit,
                "payment.recorded",
                lambda books: books.record_payment(checked),
                lambda done: f"Payment {done.number}: {money_text(done.amount, done.currency)} {done.currency}",
            )
        except (Invalid, Refused) as refused:
            typed.refused(refused)
            return await self._payment_form(request, visit, company, typed, status_code=400)
        return self._to(KINDS["payment"], payment.id, "recorded")

    def _payment_edit_page(
        self, request: Request, visit: AdminVisit, payment: Payment, typed: Typed, *, status_code: int = 200
    ) -> Response:
        return self._page(
            request,
            visit,
            "dashboard/documents/payment_edit.html",
            status_code=status_code,
            title=i18n.gettext("Edit payment %(number)s") % {"number": payment.number},
            section="payment",
            payment=payment,
            values=typed.shown,
            errors=typed.errors,
            methods=PAYMENT_METHODS,
            method_label=method_label,
        )

    async def _payment(self, request: Request, company: Company) -> Payment | None:
        found: Payment | None = await self._get(KINDS["payment"], company, _document_id(request))
        return found

    @admin(area="billing")
    async def edit_payment(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        payment = await self._payment(request, company)
        if payment is None:
            return error_page(404, N_("There is no such payment."))
        shown = {name: str(getattr(payment, name)) for name in _FIELDS["payment"]}
        return self._payment_edit_page(request, visit, payment, Typed(shown))

    @admin(form=True, area="billing")
    async def save_payment(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        payment = await self._payment(request, company)
        if payment is None:
            return error_page(404, N_("There is no such payment."))
        typed = Typed({name: form.text(name, 200).strip() for name in _FIELDS["payment"] if name in form})
        changes = {name: value for name, value in typed.shown.items() if value != getattr(payment, name)}
        typed.shown = {name: str(getattr(payment, name)) for name in _FIELDS["payment"]} | typed.shown
        if not changes.get("number", True):
            del changes["number"]
        if not changes:
            return self._to(KINDS["payment"], payment.id, "unchanged")
        try:
            checked = check_object(changes, PAYMENT.for_update())
            await self._write(
                company,
                visit,
                "document.changed",
                lambda books: books.update_payment(payment.id, checked),
                lambda _done: f"Payment {payment.number}: " + _changes(payment, checked),
            )
        except NotFound:
            return error_page(404, N_("There is no such payment."))
        except (Invalid, Refused) as refused:
            typed.refused(refused)
            return self._payment_edit_page(request, visit, payment, typed, status_code=400)
        return self._to(KINDS["payment"], payment.id, "saved")


def _changes(before: Any, changes: dict[str, Any]) -> str:
    """Old and new values of what changed, for the audit trail (lines by count)."""
    parts = []
    for name, value in sorted(changes.items()):
        if name == "lines":
            parts.append(f"lines: {len(before.lines)} -> {len(value)} lines")
        else:
            parts.append(f"{name}: {str(getattr(before, name, ''))[:60]!r} -> {str(value)[:60]!r}")
    return "; ".join(parts)[:1000]


def _void_question(kind: Kind, document: Any) -> Confirmation:
    consequences = {
        "invoice": N_("The customer owes nothing on it any more. It stays on record, marked voided."),
        "credit_note": N_("The credit is taken back; an invoice it was applied to is owed again for it."),
        "estimate": N_("The customer can no longer approve it. It stays on record, marked voided."),
    }
    return Confirmation(
        i18n.gettext("Void %(label)s %(number)s?")
        % {"label": i18n.gettext(kind.label).lower(), "number": document.number},
        (i18n.gettext(consequences[kind.kind]), i18n.gettext("This cannot be undone.")),
        i18n.gettext("Void %(label)s") % {"label": i18n.gettext(kind.label).lower()},
        {},
        cancel=f"{kind.path}/{document.id}",
    )


def _delete_question(kind: Kind, document: Any) -> Confirmation:
    consequence = (
        i18n.gettext("The invoices it paid are owed again. Delete a payment recorded by mistake, or one that bounced.")
        if kind.kind == "payment"
        else i18n.gettext("Only a draft is deleted; the customer never saw it.")
    )
    return Confirmation(
        i18n.gettext("Delete %(label)s %(number)s?")
        % {"label": i18n.gettext(kind.label).lower(), "number": document.number},
        (consequence, i18n.gettext("This cannot be undone.")),
        i18n.gettext("Delete %(label)s") % {"label": i18n.gettext(kind.label).lower()},
        {},
        cancel=f"{kind.path}/{document.id}",
    )


def _no_such(kind: Kind) -> Response:
    return error_page(404, i18n.gettext("There is no such %(label)s.") % {"label": i18n.gettext(kind.label).lower()})


def document_routes(pages: DocumentPages) -> list[BaseRoute]:
    """The routes of the four lists and their documents (a payment's page and refunds are refunds.py's)."""
    get, post = ["GET"], ["POST"]
    routes: list[BaseRoute] = []
    for kind in KINDS.values():
        one = f"{kind.path}/{{{kind.kind}_id:int}}"
        routes += [
            Route(kind.path, pages.document_list, methods=get),
            Route(f"{kind.path}.csv", pages.document_csv, methods=get),
            Route(f"{one}/delete", pages.delete_document, methods=post),
            Route(f"{one}/pdf", pages.document_pdf, methods=get),
        ]
        if kind.kind == "payment":
            routes += [
                Route(f"{kind.path}/new", pages.new_payment, methods=get),
                Route(f"{kind.path}/new", pages.record_payment, methods=post),
                Route(f"{one}/edit", pages.edit_payment, methods=get),
                Route(f"{one}/edit", pages.save_payment, methods=post),
            ]
        else:
            routes += [
                Route(f"{kind.path}/new", pages.new_document, methods=get),
                Route(f"{kind.path}/new", pages.create_document, methods=post),
                Route(one, pages.document_detail, methods=get),
                Route(f"{one}/edit", pages.edit_document, methods=get),
                Route(f"{one}/edit", pages.save_document, methods=post),
                Route(f"{one}/issue", pages.issue_document, methods=post),
                Route(f"{one}/void", pages.void_document, methods=post),
            ]
    return routes
