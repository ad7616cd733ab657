"""The portal's pages. Every query is scoped to the signed-in customer of this host's company."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal import sessions
from billportal.storage.records import Company, Customer, Session
from billportal.web.context import Context, company_for
from billportal.web.errors import error_page
from billportal.web.security import content_security_policy
from billportal.web.templates import NO_STORE, render

INVOICES_PER_PAGE = 25
_STATUS_FILTERS = {"all": (), "open": ("open",), "paid": ("paid",), "past_due": ("open",), "voided": ("voided",)}


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


def page_headers(company: Company) -> dict[str, str]:
    headers = dict(NO_STORE)
    headers["Content-Security-Policy"] = content_security_policy(
        form_targets=[company.sign_out_url] if company.sign_out_url else [],
        frame_ancestors=company.frame_ancestors,
    )
    return headers


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
        headers = dict(NO_STORE)
        if company.sign_in_url:
            # Remote login: the company's app signs the visitor in again and
            # sends them back to the page they asked for.
            separator = "&" if "?" in company.sign_in_url else "?"
            url = f"{company.sign_in_url}{separator}{urlencode({'redirect_to': page_id})}"
            return RedirectResponse(url, status_code=303, headers=headers)
        clear = sessions.clear_cookie_header(
            self.context.settings.session_cookie_name, secure=self.context.settings.cookie_secure
        )
        headers["Set-Cookie"] = clear
        return render("portal/sign_in_needed.html", status_code=401, headers=headers, company=company)

    def _page(self, visit: Visit, template: str, **context: Any) -> Response:
        return render(
            template,
            headers=page_headers(visit.company),
            company=visit.company,
            customer=visit.customer,
            csrf_token=visit.session.csrf_token,
            **context,
        )

    async def my_account(self, request: Request) -> Response:
        visit = await self._visit(request, "my_account")
        if not isinstance(visit, Visit):
            return visit
        store = self.context.store
        today = today_in(visit.company, self.context.clock())
        open_invoices, open_count = await store.invoices(
            visit.company.id, visit.customer.id, statuses=("open",), limit=INVOICES_PER_PAGE
        )
        balance = await store.balance_due(visit.company.id, visit.customer.id)
        return self._page(
            visit,
            "portal/my_account.html",
            page="my_account",
            balance=balance,
            open_invoices=open_invoices,
            open_count=open_count,
            today=today,
        )

    async def invoices(self, request: Request) -> Response:
        visit = await self._visit(request, "invoices")
        if not isinstance(visit, Visit):
            return visit
        status = request.query_params.get("status", "all")
        if status not in _STATUS_FILTERS:
            status = "all"
        search = request.query_params.get("q", "")[:64]
        page_param = request.query_params.get("page", "1")
        page = int(page_param) if page_param.isdigit() and 0 < int(page_param) < 100_000 else 1
        today = today_in(visit.company, self.context.clock())
        rows, total = await self.context.store.invoices(
            visit.company.id,
            visit.customer.id,
            statuses=_STATUS_FILTERS[status],
            past_due_before=today if status == "past_due" else None,
            number_contains=search,
            limit=INVOICES_PER_PAGE,
            offset=(page - 1) * INVOICES_PER_PAGE,
        )
        pages = max(1, -(-total // INVOICES_PER_PAGE))
        return self._page(
            visit,
            "portal/invoices.html",
            page="invoices",
            invoices=rows,
            total=total,
            status=status,
            search=search,
            page_number=page,
            pages=pages,
            today=today,
        )

    async def invoice(self, request: Request) -> Response:
        visit = await self._visit(request, "invoices")
        if not isinstance(visit, Visit):
            return visit
        invoice_id = request.path_params["invoice_id"]
        invoice = await self.context.store.invoice(visit.company.id, visit.customer.id, invoice_id)
        if invoice is None:
            return error_page(404)
        today = today_in(visit.company, self.context.clock())
        return self._page(visit, "portal/invoice.html", page="invoices", invoice=invoice, today=today)

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
        return render("portal/signed_out.html", company=company)

    async def theme(self, request: Request) -> Response:
        """The company's accent colour as CSS (the CSP allows no inline styles)."""
        company = await company_for(request, self.context)
        accent = company.accent_color if company is not None else "#2563eb"
        body = f":root {{ --accent: {accent}; }}\n"
        return Response(body, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})
