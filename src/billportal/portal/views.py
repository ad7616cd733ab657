"""The portal's pages. Every query is scoped to the signed-in customer of this host's company."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal.core import countries
from billportal.core.clock import local_date
from billportal.portal.forms import (
    APPROVER_FIELD,
    BILLING_INFO_FIELDS,
    DECLINE_REASON_FIELD,
    check_billing_info,
    clean_text,
)
from billportal.portal.labels import (
    address_lines,
    credit_note_state,
    download_name,
    estimate_state,
    status_label,
)
from billportal.portal.theme import DEFAULT_ACCENT, theme_css
from billportal.services.billing import Answer, estimate_version
from billportal.services.statements import (
    BalanceForwardStatement,
    Month,
    OpenItemStatement,
    StatementMonths,
    method_label,
)
from billportal.storage.documents import Scope
from billportal.storage.records import Company, CreditNote, Customer, Estimate, Invoice, Payment, Session
from billportal.web import sessions
from billportal.web.context import Context, company_for
from billportal.web.errors import error_page
from billportal.web.forms import Form, UnreadableForm, read_form
from billportal.web.guards import Guard, declare
from billportal.web.security import content_security_policy
from billportal.web.templates import NO_STORE, render
from billportal.web.urls import with_query

PER_PAGE: Final = 25
INVOICES_PER_PAGE: Final = PER_PAGE
RECENT_PAYMENTS: Final = 5
MAX_PAGE: Final = 100_000
EXPIRED_FORM: Final = "This form has expired. Go back, reload the page and try again."
# (what the customer answered, how it went) -> what they are told
_ANSWER_NOTICES: Final = {
    ("approve", Answer.CHANGED): "This estimate changed; review it again.",
    ("approve", Answer.CLOSED): "This estimate can no longer be approved.",
    ("decline", Answer.CHANGED): "This estimate changed; review it again.",
    ("decline", Answer.CLOSED): "This estimate can no longer be declined.",
}
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

    @property
    def scope(self) -> Scope:
        """What this customer may see: their own documents, drafts left out."""
        return Scope(self.company.id, self.customer.id)


PortalView = Callable[["Portal", Request], Awaitable[Response]]
CustomerView = Callable[["Portal", Request, Visit], Awaitable[Response]]


def customer(page_id: str) -> Callable[[CustomerView], PortalView]:
    """The view needs a signed-in customer of the host's company; otherwise the visitor is asked to sign in.

    ``page_id`` (a ``redirect_to`` page id) is where a remote sign-in brings the customer back to.
    """

    def decorate(view: CustomerView) -> PortalView:
        @functools.wraps(view)
        async def guarded(self: Portal, request: Request) -> Response:
            visit = await self.visit(request, page_id)
            if not isinstance(visit, Visit):
                return visit
            return await view(self, request, visit)

        declare(guarded, Guard("customer", page=page_id))
        return guarded

    return decorate


def customer_form(
    page_id: str,
) -> Callable[[Callable[[Portal, Request, Visit, Form], Awaitable[Response]]], PortalView]:
    """As :func:`customer`, for a posted form: it is read (size-capped) and its CSRF token checked first."""

    def decorate(view: Callable[[Portal, Request, Visit, Form], Awaitable[Response]]) -> PortalView:
        @functools.wraps(view)
        async def guarded(self: Portal, request: Request) -> Response:
            visit = await self.visit(request, page_id)
            if not isinstance(visit, Visit):
                return visit
            try:
                form = await read_form(request)
            except UnreadableForm as refused:
                return error_page(refused.status, refused.message)
            if not sessions.csrf_matches(visit.session, form.get("csrf_token", "")):
                return error_page(403, EXPIRED_FORM)
            return await view(self, request, visit, form)

        declare(guarded, Guard("customer", form=True, page=page_id))
        return guarded

    return decorate


def today_in(company: Company, now: int) -> str:
    """The company's calendar date (due dates and statements follow its time zone)."""
    return local_date(now, company.time_zone).isoformat()


def page_number(request: Request) -> int:
    """The ``page`` query parameter of a list; 1 when absent or not a sensible page number."""
    text = request.query_params.get("page", "1")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 7 and 0 < int(text) < MAX_PAGE else 1


def _document_id(request: Request) -> int:
    """The document id in the path (bounded by the route's convertor; one past a column's range finds nothing)."""
    document_id: int = request.path_params["document_id"]
    return document_id


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
        self.billing = context.billing

    async def visit(self, request: Request, page_id: str) -> Visit | Response:
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
                cut_off = company.session_cutoff is not None and session.created_at <= company.session_cutoff
                if sessions.is_live(session, now, context.timeouts) and not cut_off:
                    found = await self.billing.customer(company.id, session.customer_id)
                    if found is not None:
                        if sessions.needs_touch(session, now, context.timeouts):
                            await context.store.touch_session(id_hash, now)
                        return Visit(company, session, found)
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

    async def _document(self, request: Request, visit: Visit, kind: str) -> Any:
        """The document the path names if it is this customer's to see; None otherwise (the same 404 for both)."""
        return await self.billing.get(kind, visit.scope, _document_id(request))

    async def _list(self, request: Request, visit: Visit, kind: str, page_id: str, template: str) -> Response:
        """One page of a customer's payments, credit notes or estimates."""
        page = page_number(request)
        rows, total = await self.billing.documents(kind, visit.scope, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
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

    @customer("my_account")
    async def my_account(self, _request: Request, visit: Visit) -> Response:
        billing, company, customer = self.billing, visit.company, visit.customer
        today = self._today(visit)
        open_invoices, open_count = await billing.invoices(visit.scope, statuses=("open",), limit=PER_PAGE)
        balance = await billing.account_balance(company.id, customer.id, customer.currency, today=today)
        payments = await billing.recent_payments(visit.scope, limit=RECENT_PAYMENTS)
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

    @customer("pay")
    async def pay(self, _request: Request, visit: Visit) -> Response:
        today = self._today(visit)
        customer = visit.customer
        statement = await self.billing.open_item_statement(
            visit.company.id, customer.id, customer.currency, Month.of(today), today=today
        )
        return self._page(visit, "portal/pay.html", page="pay", statement=statement, today=today)

    # -- invoices ----------------------------------------------------------------------

    @customer("invoices")
    async def invoices(self, request: Request, visit: Visit) -> Response:
        status = request.query_params.get("status", "all")
        if status not in _STATUS_FILTERS:
            status = "all"
        search = clean_text(request.query_params.get("q", ""))[:64]
        page = page_number(request)
        today = self._today(visit)
        rows, total = await self.billing.invoices(
            visit.scope,
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

    @customer("invoices")
    async def invoice(self, request: Request, visit: Visit) -> Response:
        invoice: Invoice | None = await self._document(request, visit, "invoice")
        if invoice is None:
            return error_page(404)
        payments, credit_notes = await self.billing.settlements(visit.scope, invoice.id)
        return self._page(
            visit,
            "portal/invoice.html",
            page="invoices",
            invoice=invoice,
            payments=payments,
            credit_notes=credit_notes,
            today=self._today(visit),
        )

    @customer("invoices")
    async def invoice_pdf(self, request: Request, visit: Visit) -> Response:
        invoice: Invoice | None = await self._document(request, visit, "invoice")
        if invoice is None:
            return error_page(404)
        payments, credit_notes = await self.billing.settlements(visit.scope, invoice.id)
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

    @customer("payments")
    async def payments(self, request: Request, visit: Visit) -> Response:
        return await self._list(request, visit, "payment", "payments", "portal/payments.html")

    @customer("payments")
    async def payment(self, request: Request, visit: Visit) -> Response:
        payment: Payment | None = await self._document(request, visit, "payment")
        if payment is None:
            return error_page(404)
        return self._page(visit, "portal/payment.html", page="payments", payment=payment)

    @customer("payments")
    async def payment_pdf(self, request: Request, visit: Visit) -> Response:
        payment: Payment | None = await self._document(request, visit, "payment")
        if payment is None:
            return error_page(404)
        content = await run_in_threadpool(pdf().receipt_pdf, visit.company, visit.customer, payment)
        return pdf_response(content, download_name("receipt", payment.number))

    # -- credit notes ------------------------------------------------------------------------

    @customer("credit_notes")
    async def credit_notes(self, request: Request, visit: Visit) -> Response:
        return await self._list(request, visit, "credit_note", "credit_notes", "portal/credit_notes.html")

    async def _credit_note(self, request: Request, visit: Visit) -> tuple[CreditNote, Invoice | None] | None:
        """A credit note and the invoice it was applied to, if any."""
        note: CreditNote | None = await self._document(request, visit, "credit_note")
        if note is None:
            return None
        invoice = None
        if note.invoice_id is not None:
            invoice = await self.billing.get("invoice", visit.scope, note.invoice_id)
        return note, invoice

    @customer("credit_notes")
    async def credit_note(self, request: Request, visit: Visit) -> Response:
        found = await self._credit_note(request, visit)
        if found is None:
            return error_page(404)
        note, invoice = found
        return self._page(visit, "portal/credit_note.html", page="credit_notes", note=note, invoice=invoice)

    @customer("credit_notes")
    async def credit_note_pdf(self, request: Request, visit: Visit) -> Response:
        found = await self._credit_note(request, visit)
        if found is None:
            return error_page(404)
        note, invoice = found
        number = invoice.number if invoice is not None else None
        content = await run_in_threadpool(pdf().credit_note_pdf, visit.company, visit.customer, note, number)
        return pdf_response(content, download_name("credit-note", note.number))

    # -- estimates ---------------------------------------------------------------------------

    @customer("estimates")
    async def estimates(self, request: Request, visit: Visit) -> Response:
        return await self._list(request, visit, "estimate", "estimates", "portal/estimates.html")

    def _estimate_page(self, visit: Visit, estimate: Estimate, status_code: int = 200, **form: str) -> Response:
        state = estimate_state(estimate, self._today(visit))
        return self._page(
            visit,
            "portal/estimate.html",
            status_code=status_code,
            page="estimates",
            estimate=estimate,
            state=state,
            reason_field=DECLINE_REASON_FIELD,
            reason=form.get("reason", ""),
            reason_error=form.get("reason_error", ""),
            notice=form.get("notice", ""),
            version=estimate_version(estimate),
        )

    def _approval_page(self, visit: Visit, estimate: Estimate, status_code: int = 200, **form: str) -> Response:
        """The confirmation step of an approval: the total, the approver's name, and the version shown."""
        return self._page(
            visit,
            "portal/estimate_approve.html",
            status_code=status_code,
            page="estimates",
            estimate=estimate,
            field=APPROVER_FIELD,
            approved_by=form.get("approved_by", ""),
            approve_error=form.get("error", ""),
            version=estimate_version(estimate),
        )

    @customer("estimates")
    async def estimate(self, request: Request, visit: Visit) -> Response:
        estimate: Estimate | None = await self._document(request, visit, "estimate")
        if estimate is None:
            return error_page(404)
        return self._estimate_page(visit, estimate)

    @customer("estimates")
    async def estimate_pdf(self, request: Request, visit: Visit) -> Response:
        estimate: Estimate | None = await self._document(request, visit, "estimate")
        if estimate is None:
            return error_page(404)
        content = await run_in_threadpool(
            pdf().estimate_pdf, visit.company, visit.customer, estimate, self._today(visit)
        )
        return pdf_response(content, download_name("estimate", estimate.number))

    @customer("estimates")
    async def confirm_approval(self, request: Request, visit: Visit) -> Response:
        """Asks the customer to confirm the approval, showing the total they agree to."""
        estimate: Estimate | None = await self._document(request, visit, "estimate")
        if estimate is None:
            return error_page(404)
        if estimate_state(estimate, self._today(visit)) != "awaiting_approval":
            return RedirectResponse(f"/estimates/{estimate.id}", status_code=303, headers=dict(NO_STORE))
        return self._approval_page(visit, estimate)

    @customer_form("estimates")
    async def approve_estimate(self, request: Request, visit: Visit, form: Form) -> Response:
        """The customer approves an estimate: who (the name they type) and when are kept."""
        estimate: Estimate | None = await self._document(request, visit, "estimate")
        if estimate is None:
            return error_page(404)
        name, error = APPROVER_FIELD.check(form.get(APPROVER_FIELD.name, ""))
        if error:
            return self._approval_page(visit, estimate, 400, approved_by=name, error=error)
        answer = await self.billing.approve_estimate(
            visit.company.id,
            visit.customer.id,
            estimate.id,
            approved_by=name,
            version=form.get("version", ""),
            now=self.context.clock(),
            valid_on=self._today(visit),
        )
        return await self._answered(request, visit, estimate, "approve", answer)

    @customer_form("estimates")
    async def decline_estimate(self, request: Request, visit: Visit, form: Form) -> Response:
        """The customer declines an estimate, with a reason the company sees if they give one."""
        estimate: Estimate | None = await self._document(request, visit, "estimate")
        if estimate is None:
            return error_page(404)
        reason, error = DECLINE_REASON_FIELD.check(form.get(DECLINE_REASON_FIELD.name, ""))
        if error:
            return self._estimate_page(visit, estimate, 400, reason=reason, reason_error=error)
        answer = await self.billing.decline_estimate(
            visit.company.id,
            visit.customer.id,
            estimate.id,
            reason=reason,
            version=form.get("version", ""),
            now=self.context.clock(),
            valid_on=self._today(visit),
        )
        return await self._answered(request, visit, estimate, "decline", answer)

    async def _answered(
        self, request: Request, visit: Visit, estimate: Estimate, action: str, answer: Answer
    ) -> Response:
        if answer is Answer.DONE:
            return RedirectResponse(f"/estimates/{estimate.id}", status_code=303, headers=dict(NO_STORE))
        # Changed, answered in another tab, expired or withdrawn meanwhile: show it as it is now.
        current = await self._document(request, visit, "estimate") or estimate
        return self._estimate_page(visit, current, 409, notice=_ANSWER_NOTICES[action, answer])

    # -- statements ----------------------------------------------------------------------------

    async def _statement_month(self, request: Request, visit: Visit) -> tuple[Month, StatementMonths, str, str]:
        """The month asked for (default: see :func:`statement_months`), the months offered, today, and what is wrong."""
        today = self._today(visit)
        company, customer = visit.company, visit.customer
        months = await self.billing.statement_months(
            company.id, customer.id, customer.currency, today=today, since=today_in(company, customer.created_at)
        )
        asked = request.query_params.get("month", "")
        if not asked:
            return months.default, months, today, ""
        try:
            month = Month.parse(asked[:16])
        except ValueError:
            return months.default, months, today, "Choose a month from the list."
        if month > Month.of(today):
            return months.default, months, today, "Statements can be made up to the current month."
        return month, months, today, ""

    async def _statement(self, request: Request, visit: Visit, kind: str) -> Response:
        month, months, today, error = await self._statement_month(request, visit)
        statement = await self._statement_for(visit, kind, month, today)
        offered = list(months.offered)
        if month not in offered:
            offered.append(month)
        return self._page(
            visit,
            _STATEMENTS[kind][1],
            status_code=400 if error else 200,
            page="statements",
            kind=kind,
            statement=statement,
            months=offered,
            month_error=error,
        )

    async def _statement_for(
        self, visit: Visit, kind: str, month: Month, today: str
    ) -> BalanceForwardStatement | OpenItemStatement:
        company, customer = visit.company, visit.customer
        if kind == "balance-forward":
            return await self.billing.balance_forward_statement(
                company.id, customer.id, customer.currency, month, today=today
            )
        return await self.billing.open_item_statement(company.id, customer.id, customer.currency, month, today=today)

    async def _statement_pdf(self, request: Request, visit: Visit, kind: str) -> Response:
        month, _months, today, error = await self._statement_month(request, visit)
        if error:
            return error_page(400, error)
        statement = await self._statement_for(visit, kind, month, today)
        if isinstance(statement, BalanceForwardStatement):
            content = await run_in_threadpool(pdf().balance_forward_pdf, visit.company, visit.customer, statement)
        else:
            content = await run_in_threadpool(pdf().open_item_pdf, visit.company, visit.customer, statement)
        return pdf_response(content, download_name(f"statement-{kind}", month.key))

    @customer("balance_forward_statement")
    async def balance_forward_statement(self, request: Request, visit: Visit) -> Response:
        return await self._statement(request, visit, "balance-forward")

    @customer("balance_forward_statement")
    async def balance_forward_statement_pdf(self, request: Request, visit: Visit) -> Response:
        return await self._statement_pdf(request, visit, "balance-forward")

    @customer("open_item_statement")
    async def open_item_statement(self, request: Request, visit: Visit) -> Response:
        return await self._statement(request, visit, "open-item")

    @customer("open_item_statement")
    async def open_item_statement_pdf(self, request: Request, visit: Visit) -> Response:
        return await self._statement_pdf(request, visit, "open-item")

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
            countries=countries.countries(),
            country_name=countries.country_name(values["country"]),
            regions=countries.subdivisions(values["country"]),
        )

    @customer("update_billing_info")
    async def billing_info(self, request: Request, visit: Visit) -> Response:
        values = {field.name: getattr(visit.customer, field.name) for field in BILLING_INFO_FIELDS}
        saved = request.query_params.get("saved") == "1"
        return self._billing_info_page(visit, values, {}, saved=saved)

    @customer_form("update_billing_info")
    async def update_billing_info(self, _request: Request, visit: Visit, form: Form) -> Response:
        values, errors = check_billing_info(form)
        if errors:
            return self._billing_info_page(visit, values, errors, saved=False, status_code=400)
        await self.billing.update_billing_info(visit.company.id, visit.customer.id, values, now=self.context.clock())
        return RedirectResponse("/billing-info?saved=1", status_code=303, headers=dict(NO_STORE))

    # -- signing out -----------------------------------------------------------------------------

    async def sign_out(self, request: Request) -> Response:
        """Ends the session (a session that is already over signs out too: the browser only forgets it)."""
        context = self.context
        company = await company_for(request, context)
        if company is None:
            return error_page(404)
        try:
            form = await read_form(request, max_bytes=1024, max_fields=4)
        except UnreadableForm as refused:
            return error_page(refused.status, refused.message)
        cookie = request.cookies.get(context.settings.session_cookie_name)
        if not cookie:
            return RedirectResponse("/signed-out", status_code=303, headers=dict(NO_STORE))
        id_hash = sessions.hash_session_id(cookie)
        session = await context.store.session(id_hash)
        if session is not None and not sessions.csrf_matches(session, form.get("csrf_token", "")):
            return error_page(403, EXPIRED_FORM)
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
