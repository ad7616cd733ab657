"""The portal's pages. Every query is scoped to the signed-in customer of this host's company."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Final, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal import sessions
from billportal.portal.forms import (
    APPROVER_FIELD,
    BILLING_INFO_FIELDS,
    UnreadableForm,
    check_billing_info,
    clean_text,
    read_form,
)
from billportal.portal.labels import (
    address_lines,
    credit_note_state,
    download_name,
    estimate_state,
    status_label,
)
from billportal.portal.theme import DEFAULT_ACCENT, theme_css
from billportal.storage.records import Company, CreditNote, Customer, Estimate, Invoice, Payment, Session
from billportal.storage.statements import BalanceForwardStatement, Month, OpenItemStatement, method_label
from billportal.web.context import Context, company_for
from billportal.web.errors import error_page
from billportal.web.security import content_security_policy
from billportal.web.templates import NO_STORE, render
from billportal.web.urls import with_query

T = TypeVar("T")

PER_PAGE: Final = 25
INVOICES_PER_PAGE: Final = PER_PAGE
RECENT_PAYMENTS: Final = 5
STATEMENT_MONTHS: Final = 24
MAX_PAGE: Final = 100_000
# Documents' ids are INTEGER columns, 32-bit on PostgreSQL: a larger id names none
# (and binding it would fail there with an error instead).
MAX_DOCUMENT_ID: Final = 2**31 - 1
_STATUS_FILTERS: Final = {
    "all": (),
    "open": ("open",),
    "paid": ("paid",),
    "past_due": ("open",),
    "voided": ("voided",),
}
# statement kind in the path -> (page id, template)
_STATEMENTS: Final = {
    "balance-forward": ("balance_forward_statement", "portal/statement_balance_forward.html"),
    "open-item": ("open_item_statement", "portal/statement_open_item.html"),
}


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in request: the company, the session and its customer."""

    company: Company
    session: Session
    customer: Customer


def today_in(company: Company, now: int) -> str:
    """The company's calendar date (due dates and statements follow its time zone)."""
    try:
        zone = ZoneInfo(company.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.fromtimestamp(now, UTC).astimezone(zone).date().isoformat()


def page_number(request: Request) -> int:
    """The ``page`` query parameter of a list; 1 when absent or not a sensible page number."""
    text = request.query_params.get("page", "1")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 7 and 0 < int(text) < MAX_PAGE else 1


def _document_id(request: Request) -> int | None:
    """The document id in the path, or None when no stored document can have it."""
    document_id: int = request.path_params["document_id"]
    return document_id if 0 < document_id <= MAX_DOCUMENT_ID else None


def pdf_response(content: bytes, filename: str) -> Response:
    """A PDF download that no cache keeps."""
    headers = dict(NO_STORE)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(content, media_type="application/pdf", headers=headers)


def page_headers(company: Company) -> dict[str, str]:
    headers = dict(NO_STORE)
    headers["Content-Security-Policy"] = content_security_policy(
        form_targets=[company.sign_out_url] if company.sign_out_url else [],
        frame_ancestors=company.frame_ancestors,
    )
    return headers


def pdf() -> ModuleType:
    """The PDF module, loaded on the first PDF: fpdf2 brings Pillow and NumPy, tens of MB a worker."""
    from billportal.portal import pdf as module

    return module


class Portal:
    """The customer-facing pages of a company's host."""

    def __init__(self, context: Context) -> None:
        self.context = context

    async def _visit(self, request: Request, page_id: str) -> Visit | Response:
        """The signed-in visit, or the answer for a visitor who is not signed in."""
        context = self.context
        company = await company_for(request, context)
        if company is None:
            return error_page(404)
        cookie = request.cookies.get(context.settings.session_cookie_name)
        if cookie:
            id_hash = sessions.hash_session_id(cookie)
            session = await context.store.session(id_hash)
            now = context.clock()
            if session is not None and session.company_id == company.id:
                if sessions.is_live(session, now, context.timeouts):
                    customer = await context.store.customer(company.id, session.customer_id)
                    if customer is not None:
                        if sessions.needs_touch(session, now):
                            await context.store.touch_session(id_hash, now)
                        return Visit(company, session, customer)
                await context.store.end_session(id_hash)
        return self._sign_in_needed(company, page_id)

    def _sign_in_needed(self, company: Company, page_id: str) -> Response:
        headers = page_headers(company)
        if company.sign_in_url:
            # Remote login: the company's app signs the visitor in again and
            # sends them back to the page they asked for.
            url = with_query(company.sign_in_url, redirect_to=page_id)
            return RedirectResponse(url, status_code=303, headers=headers)
        clear = sessions.clear_cookie_header(
            self.context.settings.session_cookie_name, secure=self.context.settings.cookie_secure
        )
        headers["Set-Cookie"] = clear
        return render("portal/sign_in_needed.html", status_code=401, headers=headers, company=company)

    def _page(self, visit: Visit, template: str, status_code: int = 200, **context: Any) -> Response:
        return render(
            template,
            status_code=status_code,
            headers=page_headers(visit.company),
            company=visit.company,
            customer=visit.customer,
            address=address_lines(visit.customer),
            csrf_token=visit.session.csrf_token,
            status_label=status_label,
            method_label=method_label,
            estimate_state=estimate_state,
            credit_note_state=credit_note_state,
            **context,
        )

    def _today(self, visit: Visit) -> str:
        return today_in(visit.company, self.context.clock())

    async def _document(
        self, request: Request, page_id: str, load: Callable[[Visit, int], Awaitable[T | None]]
    ) -> tuple[Visit, T] | Response:
        """The signed-in visit and the document the path names; the same 404 for another's or none."""
        visit = await self._visit(request, page_id)
        if not isinstance(visit, Visit):
            return visit
        document_id = _document_id(request)
        document = await load(visit, document_id) if document_id is not None else None
        if document is None:
            return error_page(404)
        return visit, document

    async def _form(self, request: Request, visit: Visit) -> dict[str, str] | Response:
        """A posted form whose CSRF token matches the session's, or the page that refuses it."""
        try:
            form = await read_form(request)
        except UnreadableForm as refused:
            return error_page(refused.status, refused.message)
        if not sessions.csrf_matches(visit.session, form.get("csrf_token", "")):
            return error_page(403, "This form has expired. Go back, reload the page and try again.")
        return form

    async def _list(
        self,
        request: Request,
        page_id: str,
        template: str,
        fetch: Callable[..., Awaitable[tuple[Sequence[Any], int]]],
    ) -> Response:
        """One page of a customer's payments, credit notes or estimates."""
        visit = await self._visit(request, page_id)
        if not isinstance(visit, Visit):
            return visit
        page = page_number(request)
        rows, total = await fetch(visit.company.id, visit.customer.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
        return self._page(
            visit,
            template,
            page=page_id,
            rows=rows,
            total=total,
            page_number=page,
            pages=max(1, -(-total // PER_PAGE)),
            pager_query="",
            today=self._today(visit),
        )

    # -- My Account and pay ------------------------------------------------------------

    async def my_account(self, request: Request) -> Response:
        visit = await self._visit(request, "my_account")
        if not isinstance(visit, Visit):
            return visit
        store = self.context.store
        company, customer = visit.company, visit.customer
        today = self._today(visit)
        open_invoices, open_count = await store.invoices(company.id, customer.id, statuses=("open",), limit=PER_PAGE)
        balance = await store.billing.account_balance(company.id, customer.id, customer.currency, today=today)
        payments = await store.billing.recent_payments(company.id, customer.id, limit=RECENT_PAYMENTS)
        return self._page(
            visit,
            "portal/my_account.html",
            page="my_account",
            balance=balance,
            open_invoices=open_invoices,
            open_count=open_count,
            payments=payments,
            today=today,
        )

    async def pay(self, request: Request) -> Response:
        visit = await self._visit(request, "pay")
        if not isinstance(visit, Visit):
            return visit
        today = self._today(visit)
        customer = visit.customer
        statement = await self.context.store.billing.open_item_statement(
            visit.company.id, customer.id, customer.currency, Month.of(today), today=today
        )
        return self._page(visit, "portal/pay.html", page="pay", statement=statement, today=today)

    # -- invoices ----------------------------------------------------------------------

    async def invoices(self, request: Request) -> Response:
        visit = await self._visit(request, "invoices")
        if not isinstance(visit, Visit):
            return visit
        status = request.query_params.get("status", "all")
        if status not in _STATUS_FILTERS:
            status = "all"
        search = clean_text(request.query_params.get("q", ""))[:64]
        page = page_number(request)
        today = self._today(visit)
        rows, total = await self.context.store.invoices(
            visit.company.id,
            visit.customer.id,
            statuses=_STATUS_FILTERS[status],
            past_due_before=today if status == "past_due" else None,
            number_contains=search,
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
        )
        return self._page(
            visit,
            "portal/invoices.html",
            page="invoices",
            invoices=rows,
            total=total,
            status=status,
            search=search,
            page_number=page,
            pages=max(1, -(-total // PER_PAGE)),
            pager_query=urlencode({"status": status, "q": search}),
            today=today,
        )

    async def _invoice(self, visit: Visit, invoice_id: int) -> Invoice | None:
        return await self.context.store.invoice(visit.company.id, visit.customer.id, invoice_id)

    async def invoice(self, request: Request) -> Response:
        found = await self._document(request, "invoices", self._invoice)
        if not isinstance(found, tuple):
            return found
        visit, invoice = found
        payments, credit_notes = await self.context.store.billing.invoice_settlements(
            visit.company.id, visit.customer.id, invoice.id
        )
        return self._page(
            visit,
            "portal/invoice.html",
            page="invoices",
            invoice=invoice,
            payments=payments,
            credit_notes=credit_notes,
            today=self._today(visit),
        )

    async def invoice_pdf(self, request: Request) -> Response:
        found = await self._document(request, "invoices", self._invoice)
        if not isinstance(found, tuple):
            return found
        visit, invoice = found
        payments, credit_notes = await self.context.store.billing.invoice_settlements(
            visit.company.id, visit.customer.id, invoice.id
        )
        content = await run_in_threadpool(
            pdf().invoice_pdf,
            visit.company,
            visit.customer,
            invoice,
            payments=payments,
            credit_notes=credit_notes,
            today=self._today(visit),
        )
        return pdf_response(content, download_name("invoice", invoice.number))

    # -- payments ------------------------------------------------------------------------

    async def payments(self, request: Request) -> Response:
        return await self._list(request, "payments", "portal/payments.html", self.context.store.billing.payments)

    async def _payment(self, visit: Visit, payment_id: int) -> Payment | None:
        return await self.context.store.billing.payment(visit.company.id, visit.customer.id, payment_id)

    async def payment(self, request: Request) -> Response:
        found = await self._document(request, "payments", self._payment)
        if not isinstance(found, tuple):
            return found
        visit, payment = found
        return self._page(visit, "portal/payment.html", page="payments", payment=payment)

    async def payment_pdf(self, request: Request) -> Response:
        found = await self._document(request, "payments", self._payment)
        if not isinstance(found, tuple):
            return found
        visit, payment = found
        content = await run_in_threadpool(pdf().receipt_pdf, visit.company, visit.customer, payment)
        return pdf_response(content, download_name("receipt", payment.number))

    # -- credit notes ------------------------------------------------------------------------

    async def credit_notes(self, request: Request) -> Response:
        billing = self.context.store.billing
        return await self._list(request, "credit_notes", "portal/credit_notes.html", billing.credit_notes)

    async def _credit_note(self, visit: Visit, note_id: int) -> tuple[CreditNote, Invoice | None] | None:
        """A credit note and the invoice it was applied to, if any."""
        store = self.context.store
        note = await store.billing.credit_note(visit.company.id, visit.customer.id, note_id)
        if note is None:
            return None
        invoice = None
        if note.invoice_id is not None:
            invoice = await store.invoice(visit.company.id, visit.customer.id, note.invoice_id)
        return note, invoice

    async def credit_note(self, request: Request) -> Response:
        found = await self._document(request, "credit_notes", self._credit_note)
        if not isinstance(found, tuple):
            return found
        visit, (note, invoice) = found
        return self._page(visit, "portal/credit_note.html", page="credit_notes", note=note, invoice=invoice)

    async def credit_note_pdf(self, request: Request) -> Response:
        found = await self._document(request, "credit_notes", self._credit_note)
        if not isinstance(found, tuple):
            return found
        visit, (note, invoice) = found
        number = invoice.number if invoice is not None else None
        content = await run_in_threadpool(pdf().credit_note_pdf, visit.company, visit.customer, note, number)
        return pdf_response(content, download_name("credit-note", note.number))

    # -- estimates ---------------------------------------------------------------------------

    async def estimates(self, request: Request) -> Response:
        return await self._list(request, "estimates", "portal/estimates.html", self.context.store.billing.estimates)

    async def _estimate(self, visit: Visit, estimate_id: int) -> Estimate | None:
        return await self.context.store.billing.estimate(visit.company.id, visit.customer.id, estimate_id)

    def _estimate_page(self, visit: Visit, estimate: Estimate, status_code: int = 200, **form: str) -> Response:
        state = estimate_state(estimate, self._today(visit))
        return self._page(
            visit,
            "portal/estimate.html",
            status_code=status_code,
            page="estimates",
            estimate=estimate,
            state=state,
            field=APPROVER_FIELD,
            approved_by=form.get("approved_by", ""),
            approve_error=form.get("error", ""),
            approve_notice=form.get("notice", ""),
        )

    async def estimate(self, request: Request) -> Response:
        found = await self._document(request, "estimates", self._estimate)
        if not isinstance(found, tuple):
            return found
        visit, estimate = found
        return self._estimate_page(visit, estimate)

    async def estimate_pdf(self, request: Request) -> Response:
        found = await self._document(request, "estimates", self._estimate)
        if not isinstance(found, tuple):
            return found
        visit, estimate = found
        content = await run_in_threadpool(
            pdf().estimate_pdf, visit.company, visit.customer, estimate, self._today(visit)
        )
        return pdf_response(content, download_name("estimate", estimate.number))

    async def approve_estimate(self, request: Request) -> Response:
        """The customer approves an estimate: who (the name they type) and when are kept."""
        visit = await self._visit(request, "estimates")
        if not isinstance(visit, Visit):
            return visit
        form = await self._form(request, visit)
        if not isinstance(form, dict):
            return form
        document_id = _document_id(request)
        estimate = await self._estimate(visit, document_id) if document_id is not None else None
        if estimate is None:
            return error_page(404)
        name, error = APPROVER_FIELD.check(form.get(APPROVER_FIELD.name, ""))
        if error:
            return self._estimate_page(visit, estimate, 400, approved_by=name, error=error)
        approved = await self.context.store.billing.approve_estimate(
            visit.company.id,
            visit.customer.id,
            estimate.id,
            approved_by=name,
            now=self.context.clock(),
            valid_on=self._today(visit),
        )
        if not approved:
            # Approved in another tab, expired, or withdrawn meanwhile: show it as it is now.
            current = await self._estimate(visit, estimate.id) or estimate
            return self._estimate_page(visit, current, 409, notice="This estimate can no longer be approved.")
        return RedirectResponse(f"/estimates/{estimate.id}", status_code=303, headers=dict(NO_STORE))

    # -- statements ----------------------------------------------------------------------------

    async def _statement_month(self, request: Request, page_id: str) -> tuple[Visit, Month, str, str] | Response:
        """The visit, the month asked for (default: the company's current one), today, and an error."""
        visit = await self._visit(request, page_id)
        if not isinstance(visit, Visit):
            return visit
        today = self._today(visit)
        current = Month.of(today)
        asked = request.query_params.get("month", "")
        if not asked:
            return visit, current, today, ""
        try:
            month = Month.parse(asked[:16])
        except ValueError:
            return visit, current, today, "Choose a month from the list."
        if month > current:
            return visit, current, today, "Statements can be made up to the current month."
        return visit, month, today, ""

    def _months(self, chosen: Month, today: str) -> list[Month]:
        """The months offered in the chooser: the last two years, and the chosen one."""
        months = [Month.of(today)]
        while len(months) < STATEMENT_MONTHS:
            months.append(months[-1].previous())
        if chosen not in months:
            months.append(chosen)
        return months

    async def _statement(self, request: Request, kind: str) -> Response:
        page_id, template = _STATEMENTS[kind]
        found = await self._statement_month(request, page_id)
        if not isinstance(found, tuple):
            return found
        visit, month, today, error = found
        statement = await self._statement_for(visit, kind, month, today)
        return self._page(
            visit,
            template,
            status_code=400 if error else 200,
            page="statements",
            kind=kind,
            statement=statement,
            months=self._months(month, today),
            month_error=error,
        )

    async def _statement_for(
        self, visit: Visit, kind: str, month: Month, today: str
    ) -> BalanceForwardStatement | OpenItemStatement:
        billing = self.context.store.billing
        company, customer = visit.company, visit.customer
        if kind == "balance-forward":
            return await billing.balance_forward_statement(
                company.id, customer.id, customer.currency, month, today=today
            )
        return await billing.open_item_statement(company.id, customer.id, customer.currency, month, today=today)

    async def _statement_pdf(self, request: Request, kind: str) -> Response:
        found = await self._statement_month(request, _STATEMENTS[kind][0])
        if not isinstance(found, tuple):
            return found
        visit, month, today, error = found
        if error:
            return error_page(400, error)
        statement = await self._statement_for(visit, kind, month, today)
        if isinstance(statement, BalanceForwardStatement):
            content = await run_in_threadpool(pdf().balance_forward_pdf, visit.company, visit.customer, statement)
        else:
            content = await run_in_threadpool(pdf().open_item_pdf, visit.company, visit.customer, statement)
        return pdf_response(content, download_name(f"statement-{kind}", month.key))

    async def balance_forward_statement(self, request: Request) -> Response:
        return await self._statement(request, "balance-forward")

    async def balance_forward_statement_pdf(self, request: Request) -> Response:
        return await self._statement_pdf(request, "balance-forward")

    async def open_item_statement(self, request: Request) -> Response:
        return await self._statement(request, "open-item")

    async def open_item_statement_pdf(self, request: Request) -> Response:
        return await self._statement_pdf(request, "open-item")

    # -- billing details ----------------------------------------------------------------------

    def _billing_info_page(
        self, visit: Visit, values: dict[str, str], errors: dict[str, str], *, saved: bool, status_code: int = 200
    ) -> Response:
        return self._page(
            visit,
            "portal/billing_info.html",
            status_code=status_code,
            page="billing_info",
            fields=BILLING_INFO_FIELDS,
            values=values,
            errors=errors,
            saved=saved,
        )

    async def billing_info(self, request: Request) -> Response:
        visit = await self._visit(request, "update_billing_info")
        if not isinstance(visit, Visit):
            return visit
        values = {field.name: getattr(visit.customer, field.name) for field in BILLING_INFO_FIELDS}
        saved = request.query_params.get("saved") == "1"
        return self._billing_info_page(visit, values, {}, saved=saved)

    async def update_billing_info(self, request: Request) -> Response:
        visit = await self._visit(request, "update_billing_info")
        if not isinstance(visit, Visit):
            return visit
        form = await self._form(request, visit)
        if not isinstance(form, dict):
            return form
        values, errors = check_billing_info(form)
        if errors:
            return self._billing_info_page(visit, values, errors, saved=False, status_code=400)
        await self.context.store.billing.update_billing_info(
            visit.company.id, visit.customer.id, values, now=self.context.clock()
        )
        return RedirectResponse("/billing-info?saved=1", status_code=303, headers=dict(NO_STORE))

    # -- signing out -----------------------------------------------------------------------------

    async def sign_out(self, request: Request) -> Response:
        context = self.context
        company = await company_for(request, context)
        if company is None:
            return error_page(404)
        cookie = request.cookies.get(context.settings.session_cookie_name)
        async with request.form(max_files=0, max_fields=4, max_part_size=1024) as form:
            submitted = form.get("csrf_token")
        if not cookie:
            return RedirectResponse("/signed-out", status_code=303, headers=dict(NO_STORE))
        id_hash = sessions.hash_session_id(cookie)
        session = await context.store.session(id_hash)
        if session is not None and (not isinstance(submitted, str) or not sessions.csrf_matches(session, submitted)):
            return error_page(403, "This form has expired. Go back, reload the page and try again.")
        await context.store.end_session(id_hash)
        target = company.sign_out_url or "/signed-out"
        headers = dict(NO_STORE)
        headers["Set-Cookie"] = sessions.clear_cookie_header(
            context.settings.session_cookie_name, secure=context.settings.cookie_secure
        )
        headers["Clear-Site-Data"] = '"cache"'
        return RedirectResponse(target, status_code=303, headers=headers)

    async def signed_out(self, request: Request) -> Response:
        company = await company_for(request, self.context)
        if company is None:
            return error_page(404)
        return render("portal/signed_out.html", headers=page_headers(company), company=company)

    async def theme(self, request: Request) -> Response:
        """The company's accent colour as CSS (the CSP allows no inline styles)."""
        company = await company_for(request, self.context)
        body = theme_css(company.accent_color if company is not None else DEFAULT_ACCENT)
        return Response(body, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})
