"""The portal's pages. Every query is scoped to the signed-in customer of this host's company."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from billportal.core import countries, i18n
from billportal.core.clock import local_date
from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.core.money import parse_money
from billportal.portal import session_handles
from billportal.portal.forms import (
    APPROVER_FIELD,
    BILLING_INFO_FIELDS,
    DECLINE_REASON_FIELD,
    check_billing_info,
    check_card,
    clean_text,
)
from billportal.portal.theme import DEFAULT_ACCENT, theme_css
from billportal.services import companies as profile
from billportal.services import contacts as contact_rules
from billportal.services.billing import Answer, Statement, StatementKind, estimate_version
from billportal.services.contacts import Membership
from billportal.services.gateways import STRIPE_JS, GatewayToken, NewMethod
from billportal.services.payments import AutoPay, PayPlan, new_attempt_token, plan_for
from billportal.services.statements import (
    BalanceForwardStatement,
    Month,
    StatementMonths,
)
from billportal.sso.pages import portal_path
from billportal.storage.documents import Scope
from billportal.storage.records import (
    Company,
    Contact,
    CreditNote,
    Customer,
    Estimate,
    Invoice,
    Payment,
    PaymentSettings,
    Session,
)
from billportal.web import devices, embedding, sessions
from billportal.web.context import Context, company_for
from billportal.web.errors import error_page
from billportal.web.forms import MAX_FORM_FIELDS, Form, UnreadableForm, read_form
from billportal.web.guards import Guard, declare
from billportal.web.images import logo_response
from billportal.web.labels import (
    address_lines,
    aging_label,
    credit_note_state,
    device_label,
    download_name,
    estimate_state,
    line_description,
    local_countries,
    local_country_name,
    method_label,
    month_name,
    status_label,
)
from billportal.web.security import content_security_policy
from billportal.web.templates import NO_STORE, render
from billportal.web.urls import with_query

PER_PAGE: Final = 25
INVOICES_PER_PAGE: Final = PER_PAGE
RECENT_PAYMENTS: Final = 5
MAX_PAGE: Final = 100_000
EXPIRED_FORM: Final = N_("This form has expired. Go back, reload the page and try again.")
# (what the customer answered, how it went) -> what they are told
_ANSWER_NOTICES: Final = {
    ("approve", Answer.CHANGED): N_("This estimate changed; review it again."),
    ("approve", Answer.CLOSED): N_("This estimate can no longer be approved."),
    ("decline", Answer.CHANGED): N_("This estimate changed; review it again."),
    ("decline", Answer.CLOSED): N_("This estimate can no longer be declined."),
}
NEXT_PAGE_SECONDS: Final = 15 * 60  # how long the page a signed-out visitor asked for is remembered
MAX_PAYABLE: Final = 50  # open invoices offered on the pay page
MAX_WEBHOOK_BYTES: Final = 256 * 1024
_ATTEMPT_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{20,64}")
_GATEWAY_TOKEN: Final = re.compile(r"pm_[A-Za-z0-9_]{1,250}")
_METHOD_NOTICES: Final = {
    "added": N_("Your card is saved. It was not charged."),
    "default": N_("Your default card is changed."),
    "removed": N_("The card is removed."),
    "autopay_on": N_("AutoPay is on: open invoices are charged to your default card on their due date."),
    "autopay_off": N_("AutoPay is off."),
}
_STATUS_FILTERS: Final = {
    "all": (),
    "open": ("open",),
    "paid": ("paid",),
    "past_due": ("open",),
    "voided": ("voided",),
}
_SECURITY_NOTICES: Final = {
    "ended": N_("The session is ended: that browser is signed out."),
    "ended_others": N_("Every other session is ended: only this browser is still signed in."),
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
    framed: bool = False  # in a frame of a site the company allows (docs/embedding.md)
    path: str = "/"  # the page asked for (the language switcher comes back to it)
    contact: Contact | None = None  # signed in as this contact of the customer; None: the customer themself
    accounts: tuple[Membership, ...] = ()  # the address's accounts, when it has several (the header's switcher)

    def may(self, needs: str) -> bool:
        """Whether this sign-in may do ``needs`` (a contact's role decides; the customer may do everything)."""
        return contact_rules.allows(None if self.contact is None else self.contact.role, needs)

    @property
    def scope(self) -> Scope:
        """What this customer may see: their own documents, drafts left out."""
        return Scope(self.company.id, self.customer.id)


# The site's view classes: Portal, and those that extend it (portal/contacts.py).
P = TypeVar("P", bound="Portal")
PortalView = Callable[[P, Request], Awaitable[Response]]
CustomerView = Callable[[P, Request, Visit], Awaitable[Response]]
FormView = Callable[[P, Request, Visit, Form], Awaitable[Response]]


def customer(page_id: str, *, needs: str = "view") -> Callable[[CustomerView[P]], PortalView[P]]:
    """The view needs a signed-in customer of the host's company; otherwise the visitor is asked to sign in.

    ``page_id`` (a ``redirect_to`` page id) is where a remote sign-in brings the customer back to.
    ``needs``: what a contact's role must allow (services/contacts.py); a contact without it gets a 403 page.
    """
    assert needs in contact_rules.PERMISSIONS, needs

    def decorate(view: CustomerView[P]) -> PortalView[P]:
        @functools.wraps(view)
        async def guarded(self: P, request: Request) -> Response:
            visit = await self.visit(request, page_id)
            if not isinstance(visit, Visit):
                return visit
            if not visit.may(needs):
                return self.not_allowed(visit)
            return await view(self, request, visit)

        declare(guarded, Guard("customer", page=page_id, needs=needs))
        return guarded

    return decorate


def customer_form(
    page_id: str, *, needs: str = "view", max_fields: int = MAX_FORM_FIELDS
) -> Callable[[FormView[P]], PortalView[P]]:
    """As :func:`customer`, for a posted form: it is read (size-capped) and its CSRF token checked first."""
    assert needs in contact_rules.PERMISSIONS, needs

    def decorate(view: FormView[P]) -> PortalView[P]:
        @functools.wraps(view)
        async def guarded(self: P, request: Request) -> Response:
            visit = await self.visit(request, page_id)
            if not isinstance(visit, Visit):
                return visit
            try:
                form = await read_form(request, max_fields=max_fields)
            except UnreadableForm as refused:
                return error_page(refused.status, refused.message)
            if not sessions.csrf_matches(visit.session, form.get("csrf_token", "")):
                return error_page(403, i18n.gettext(EXPIRED_FORM), headers=page_headers(visit.company))
            if not visit.may(needs):
                return self.not_allowed(visit)
            return await view(self, request, visit, form)

        declare(guarded, Guard("customer", form=True, page=page_id, needs=needs))
        return guarded

    return decorate


def speak(request: Request, company: Company | None, visit: Visit | None = None) -> str:
    """Chooses this request's language (docs/integration.md, "Languages") and speaks it from here on.

    The customer's saved preference, then the language kept in the session (the sign-in link's
    ``locale`` claim), then ``?locale=``, then ``Accept-Language``, then the company's default.
    """
    chosen = i18n.choose(
        [
            visit.customer.locale if visit else None,
            visit.session.locale if visit else None,
            request.query_params.get("locale"),
            i18n.negotiate(request.headers.get("accept-language", "")),
            company.default_locale if company else None,
        ]
    )
    i18n.activate(chosen)
    return chosen


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


def _new_card(form: Form, today: str) -> tuple[NewMethod | None, dict[str, str]]:
    """A new card: the PaymentMethod id the gateway's script made, or the test gateway's typed card."""
    if "payment_method" in form:  # made by the gateway's own script in the browser: no card number here
        token = form.text("payment_method", 300)
        if _GATEWAY_TOKEN.fullmatch(token):
            return GatewayToken(token), {}
        return None, {"form": i18n.gettext("Enter your card details.")}
    return check_card(form, today)


def _to_attempt(token: str) -> Response:
    """To the answer of a payment attempt (a reload there shows it again; it never pays again)."""
    return RedirectResponse(f"/pay/{token}", status_code=303, headers=dict(NO_STORE))


def pdf_response(content: bytes, filename: str) -> Response:
    """A PDF download that no cache keeps."""
    headers = dict(NO_STORE)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(content, media_type="application/pdf", headers=headers)


def page_headers(company: Company, gateway_urls: tuple[str, ...] = (), *, framed: bool = False) -> dict[str, str]:
    """A page's headers: never cached; the CSP lets the company's listed sites frame it, and nobody else.

    ``framed``: the page is shown in such a frame, with our script that tells the host page about it.
    """
    headers = dict(NO_STORE)
    headers["Content-Security-Policy"] = content_security_policy(
        form_targets=[company.sign_out_url] if company.sign_out_url else [],
        frame_ancestors=company.frame_ancestors,
        gateway_urls=gateway_urls,
        frame_script=framed and bool(company.frame_ancestors),
    )
    return headers


def gateway_script(settings: PaymentSettings) -> tuple[str, tuple[str, ...]]:
    """Stripe's script for a company that takes cards through Stripe, and the origins its page needs ("": none).

    A local stand-in (``api_base``, such as localstripe) serves the script and the API itself.
    """
    if settings.gateway != "stripe" or not settings.publishable_key:
        return "", ()
    if settings.api_base:
        base = settings.api_base.rstrip("/")
        return f"{base}/js.stripe.com/v3/", (base,)
    return STRIPE_JS, (STRIPE_JS, "https://api.stripe.com", "https://m.stripe.network")


def pdf() -> ModuleType:
    """The PDF module, loaded on the first PDF: fpdf2 brings Pillow and NumPy, tens of MB a worker."""
    from billportal.web import pdf as module

    return module


class Portal:
    """The customer-facing pages of a company's host."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.billing = context.billing
        self.online_payments = context.payments
        self.autopay = AutoPay(context.store)

    async def visit(self, request: Request, page_id: str) -> Visit | Response:
        """The signed-in visit, or the answer for a visitor who is not signed in."""
        context = self.context
        company = await company_for(request, context)
        speak(request, company)
        if company is None:
            return error_page(404)
        # A frame reads only the framed (partitioned) cookie, and only while the company allows
        # framing; any other request only the top-level one: the two sessions never mix.
        framed = embedding.is_framed(request)
        cookie = request.cookies.get(context.settings.session_cookie(framed))
        if framed and not company.frame_ancestors:
            cookie = None
        if cookie:
            id_hash = sessions.hash_session_id(cookie)
            session = await context.store.session(id_hash)
            now = context.clock()
            if session is not None and session.company_id == company.id:
                cut_off = company.session_cutoff is not None and session.created_at <= company.session_cutoff
                if sessions.is_live(session, now, context.timeouts) and not cut_off:
                    found = await self.billing.customer(company.id, session.customer_id)
                    contact = None
                    if found is not None and session.contact_id is not None:
                        contact = await contact_rules.get(context.store, company.id, found.id, session.contact_id)
                    if found is not None and (session.contact_id is None or contact is not None):
                        # The first page after a sign-in notes the device too (the sign-in's own
                        # statement stays as it was); then at most once a minute, as before.
                        first_page = session.last_seen_at == session.created_at and not session.device
                        if first_page or sessions.needs_touch(session, now, context.timeouts):
                            device = devices.describe(request.headers.get("user-agent", ""))
                            await context.store.touch_session(id_hash, now, device)
                        accounts = await contact_rules.memberships(context.store, company.id, session.email)
                        switcher = tuple(accounts) if len(accounts) > 1 else ()
                        # The path as routed (request.url would build a whole URL for it).
                        visit = Visit(company, session, found, framed, request.scope["path"], contact, switcher)
                        asked = i18n.shipped(request.query_params.get("locale"))
                        if asked and not session.locale and request.method == "GET":
                            # The first language asked for is kept for the session's other pages.
                            await context.store.set_session_locale(id_hash, asked)
                            visit = replace(visit, session=replace(session, locale=asked))
                        if found.locale or visit.session.locale:  # else the language spoken already
                            speak(request, company, visit)
                        return visit
                await context.store.end_session(id_hash)
        return self._sign_in_needed(request, company, page_id, framed)

    def _sign_in_needed(self, request: Request, company: Company, page_id: str, framed: bool = False) -> Response:
        headers = page_headers(company, framed=framed)
        settings = self.context.settings
        if framed:
            # In a frame the company's app signs in again by loading a new link into the frame
            # (its page's Referer shows where it is); a redirect from here would carry none.
            # Until then, the page says so, offers a new tab, and the host page is told. The
            # top-level cookie is left alone: it is not this frame's. (A frame of a site that
            # is not listed shows nothing at all: frame-ancestors.)
            headers["Set-Cookie"] = sessions.clear_cookie_header(settings.framed_cookie_name, secure=True, framed=True)
            return render(
                "portal/sign_in_needed.html",
                status_code=401,
                headers=headers,
                company=company,
                frame_origins=company.frame_ancestors,  # none: no script
                frame_event="no_session",
                new_tab_url=with_query(company.sign_in_url, redirect_to=page_id) if company.sign_in_url else "",
            )
        response: Response
        if company.sign_in_url:
            # Remote login: the company's app signs the visitor in again and
            # sends them back to the page they asked for.
            url = with_query(company.sign_in_url, redirect_to=page_id)
            response = RedirectResponse(url, status_code=303, headers=headers)
        elif company.email_sign_in:
            # No app to sign in through, but the customer can ask for a link by email.
            response = RedirectResponse(with_query("/login", redirect_to=page_id), status_code=303, headers=headers)
        else:
            response = render("portal/sign_in_needed.html", status_code=401, headers=headers, company=company)
            clear = sessions.clear_cookie_header(settings.session_cookie_name, secure=settings.cookie_secure)
            response.raw_headers.append((b"set-cookie", clear.encode()))
        wanted = portal_path(request.url.path) if request.method == "GET" else None
        if wanted is not None and wanted != "/":
            # Remembered for the next sign-in, by whichever way it comes (see sso.pages.landing_path).
            cookie = sessions.cookie_header(
                settings.next_page_cookie_name, wanted, secure=settings.cookie_secure, max_age=NEXT_PAGE_SECONDS
            )
            response.raw_headers.append((b"set-cookie", cookie.encode()))
        return response

    def _page(
        self, visit: Visit, template: str, status_code: int = 200, gateway_urls: tuple[str, ...] = (), **context: Any
    ) -> Response:
        return render(
            template,
            status_code=status_code,
            headers=page_headers(visit.company, gateway_urls, framed=visit.framed),
            frame_origins=visit.company.frame_ancestors if visit.framed else (),
            company=visit.company,
            customer=visit.customer,
            contact=visit.contact,
            accounts=visit.accounts,
            may=visit.may,
            address=address_lines(visit.customer),
            csrf_token=visit.session.csrf_token,
            this_page=portal_path(visit.path) or "/",
            status_label=status_label,
            method_label=method_label,
            aging_label=aging_label,
            line_description=line_description,
            device_label=device_label,
            month_name=month_name,
            estimate_state=estimate_state,
            credit_note_state=credit_note_state,
            **context,
        )

    def not_allowed(self, visit: Visit) -> Response:
        """A contact whose role does not allow the page: a friendly 403, with the way back."""
        return self._page(visit, "portal/not_allowed.html", status_code=403, page="")

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
        customer, today = visit.customer, self._today(visit)
        summary = await self.billing.summary(
            visit.scope, customer.currency, today=today, limit=PER_PAGE, recent=RECENT_PAYMENTS
        )
        return self._page(
            visit,
            "portal/my_account.html",
            page="my_account",
            balance=summary.balance,
            open_invoices=summary.open_invoices,
            open_count=summary.open_count,
            payments=summary.payments,
            today=today,
        )

    @customer("pay", needs="pay")
    async def pay(self, _request: Request, visit: Visit) -> Response:
        return await self._pay_page(visit, {"what": "balance"})

    async def _pay_page(
        self, visit: Visit, values: Mapping[str, str], errors: Mapping[str, str] | None = None, status_code: int = 200
    ) -> Response:
        """The pay page: what is owed and, where the company takes cards, the form (with a new one-time token)."""
        today = self._today(visit)
        company, customer = visit.company, visit.customer
        statement = await self.billing.open_item_statement(
            company.id, customer.id, customer.currency, Month.of(today), today=today
        )
        settings = await self.online_payments.settings(company.id)
        saved = []
        if settings.online and settings.allow_saved_methods:
            saved = await self.online_payments.methods(company.id, customer.id)
        if "method" not in values:  # the default card is offered first (the default comes first)
            values = {**values, "method": f"saved-{saved[0].id}" if saved else "new"}
        return self._page(
            visit,
            "portal/pay.html",
            status_code=status_code,
            page="pay",
            statement=statement,
            today=today,
            settings=settings,
            invoices=statement.invoices[:MAX_PAYABLE],
            saved=saved,
            values=values,
            errors=errors or {},
            attempt_token=new_attempt_token(),
            card_required=False,  # a saved card may be chosen instead
            **await self._card_form(visit, settings, shown=settings.online and bool(statement.invoices)),
        )

    @customer_form("pay", needs="pay", max_fields=MAX_PAYABLE + 16)
    async def pay_submit(self, _request: Request, visit: Visit, form: Form) -> Response:
        """Pay by card: at most once per form (its one-time token), whatever is clicked or resent."""
        company, customer = visit.company, visit.customer
        token = form.text("attempt", 80)
        if not _ATTEMPT_TOKEN.fullmatch(token):
            return error_page(400, i18n.gettext(EXPIRED_FORM))
        payments = self.online_payments
        if await payments.answer(company.id, customer.id, token) is not None:
            return _to_attempt(token)  # sent before: its answer (once it has one), never a second charge
        settings = await payments.settings(company.id)
        values = {name: form.text(name, 64) for name in ("what", "method", "amount")}
        values.update({name: "1" for name in form if name.startswith("invoice_") and form[name] == "1"})
        try:
            plan = await self._plan(visit, settings, form)
        except Refused as refused:
            return await self._pay_refused(
                visit, token, values, {refused.field or "form": i18n.gettext(refused.message)}
            )
        method, card_errors = self._method(visit, form)
        if method is None:
            return await self._pay_refused(visit, token, values, card_errors)
        try:
            await payments.pay(
                company, settings, customer.id, token=token, plan=plan, method=method, now=self.context.clock()
            )
        except Refused as refused:
            return await self._pay_refused(
                visit, token, values, {refused.field or "form": i18n.gettext(refused.message)}
            )
        return _to_attempt(token)

    async def _pay_refused(
        self, visit: Visit, token: str, values: Mapping[str, str], errors: Mapping[str, str]
    ) -> Response:
        """The form again with what is wrong; unless the same form was sent meanwhile, and paid what it asked."""
        if await self.online_payments.answer(visit.company.id, visit.customer.id, token) is not None:
            return _to_attempt(token)
        return await self._pay_page(visit, values, errors, 400)

    def _method(self, visit: Visit, form: Form) -> tuple[NewMethod | int | None, dict[str, str]]:
        """The saved card chosen (its id), or the new card typed; or what is wrong with the card's fields."""
        chosen = form.text("method", 32)
        number = chosen.removeprefix("saved-")
        if number != chosen and number.isascii() and number.isdigit():
            return int(number), {}
        return _new_card(form, self._today(visit))

    async def _plan(self, visit: Visit, settings: PaymentSettings, form: Form) -> PayPlan:
        """What the form asks to pay: the whole balance, chosen invoices, or an amount (if the company allows)."""
        if not settings.online:
            raise Refused("payments_off", N_("Paying online is not available here."))
        currency = visit.customer.currency
        invoices, _ = await self.billing.invoices(visit.scope, statuses=("open",), limit=MAX_PAYABLE)
        what = form.get("what", "balance")
        if what == "invoices":
            chosen = [
                int(name[8:])
                for name, value in form.items()
                if name.startswith("invoice_")
                and value == "1"
                and name[8:].isascii()
                and name[8:].isdigit()
                and len(name) < 24
            ]
            return plan_for(invoices, currency, chosen=chosen)
        if what == "amount":
            if not settings.allow_partial:
                raise Refused(
                    "partial_not_allowed", N_("Pay whole invoices: part payments are not taken here."), "what"
                )
            try:
                amount = parse_money(form.text("amount", 32), currency)
            except ValueError:
                raise Refused("invalid_amount", N_("Enter an amount such as 25.00."), "amount") from None
            return plan_for(invoices, currency, amount=amount)
        if what != "balance":
            raise Refused("invalid_choice", N_("Choose what to pay."), "what")
        return plan_for(invoices, currency)

    @customer("pay", needs="pay")
    async def pay_attempt(self, request: Request, visit: Visit) -> Response:
        """What became of a payment: paid (with the new balance), declined, or still being processed."""
        token = request.path_params["token"]
        attempt = None
        if _ATTEMPT_TOKEN.fullmatch(token):
            attempt = await self.online_payments.attempt(visit.company.id, visit.customer.id, token)
        if attempt is None:
            return error_page(404)
        customer, today = visit.customer, self._today(visit)
        balance = await self.billing.account_balance(visit.company.id, customer.id, customer.currency, today=today)
        payment = None
        if attempt.payment_id is not None:
            payment = await self.billing.get("payment", visit.scope, attempt.payment_id)
        settings = await self.online_payments.settings(visit.company.id)
        return self._page(
            visit,
            "portal/pay_result.html",
            page="pay",
            attempt=attempt,
            payment=payment,
            balance=balance,
            settings=settings,
        )

    async def webhook(self, request: Request) -> Response:
        """A gateway's event, at ``https://{company host}/webhooks/stripe``: no session; its signature is checked."""
        company = await company_for(request, self.context)
        if company is None:
            return error_page(404)
        settings = await self.online_payments.settings(company.id)
        if settings.gateway != request.path_params["gateway"]:
            return error_page(404)
        declared = request.headers.get("content-length", "")
        if not declared.isascii() or not declared.isdigit() or int(declared) > MAX_WEBHOOK_BYTES:
            return JSONResponse({"error": "too large"}, status_code=413)
        payload = await request.body()
        signature = request.headers.get("stripe-signature", "")[:2000]
        if not await self.online_payments.webhook(company, settings, payload, signature, now=self.context.clock()):
            return JSONResponse({"error": "signature"}, status_code=400)
        return JSONResponse({"received": True})

    # -- saved payment methods ----------------------------------------------------------

    async def _methods_page(
        self, visit: Visit, errors: Mapping[str, str] | None = None, notice: str = "", status_code: int = 200
    ) -> Response:
        settings = await self.online_payments.settings(visit.company.id)
        saved = await self.online_payments.methods(visit.company.id, visit.customer.id)
        autopay, failures = False, []
        if settings.online and settings.allow_autopay:
            autopay = await self.autopay.enrolled(visit.company.id, visit.customer.id)
            failures = (await self.autopay.failures(visit.company.id, visit.customer.id))[:5]
        return self._page(
            visit,
            "portal/payment_methods.html",
            autopay=autopay,
            autopay_failures=failures,
            status_code=status_code,
            page="payment_methods",
            settings=settings,
            saved=saved,
            errors=errors or {},
            notice=notice,
            card_required=True,
            **await self._card_form(visit, settings, shown=settings.online and settings.allow_saved_methods),
        )

    async def _card_form(self, visit: Visit, settings: PaymentSettings, *, shown: bool) -> dict[str, Any]:
        """For a page with a card form: the gateway's script, its origins (for the CSP), the secret it sets up with.

        A page without the form loads no script, and its policy stays script-free.
        """
        script, origins = gateway_script(settings) if shown else ("", ())
        secret = await self.online_payments.browser_setup(settings, visit.customer.id) if script else ""
        return {"gateway_js": script, "gateway_urls": origins, "card_setup": secret}

    @customer("add_payment_method", needs="manage")
    async def payment_methods(self, request: Request, visit: Visit) -> Response:
        notice = _METHOD_NOTICES.get(request.query_params.get("done", ""), "")
        notice = i18n.gettext(notice) if notice else ""
        return await self._methods_page(visit, notice=notice)

    @customer_form("add_payment_method", needs="manage")
    async def add_payment_method(self, _request: Request, visit: Visit, form: Form) -> Response:
        """Save a card for later: set up at the gateway, not charged."""
        settings = await self.online_payments.settings(visit.company.id)
        card, errors = _new_card(form, self._today(visit))
        if card is None:
            return await self._methods_page(visit, errors, status_code=400)
        try:
            await self.online_payments.add_method(settings, visit.customer.id, card, now=self.context.clock())
        except Refused as refused:
            return await self._methods_page(
                visit, {refused.field or "form": i18n.gettext(refused.message)}, status_code=400
            )
        return RedirectResponse("/payment-methods?done=added", status_code=303, headers=dict(NO_STORE))

    @customer_form("add_payment_method", needs="manage")
    async def set_autopay(self, _request: Request, visit: Visit, form: Form) -> Response:
        """Turn AutoPay on or off: open invoices are charged to the default card on their due date."""
        settings = await self.online_payments.settings(visit.company.id)
        on = form.get("autopay") == "on"
        try:
            await self.autopay.set(settings, visit.customer.id, on=on, now=self.context.clock())
        except Refused as refused:
            return await self._methods_page(visit, {"form": i18n.gettext(refused.message)}, status_code=400)
        done = "autopay_on" if on else "autopay_off"
        return RedirectResponse(f"/payment-methods?done={done}", status_code=303, headers=dict(NO_STORE))

    @customer_form("add_payment_method", needs="manage")
    async def default_payment_method(self, request: Request, visit: Visit, _form: Form) -> Response:
        method_id: int = request.path_params["method_id"]
        if not await self.online_payments.make_default(visit.company.id, visit.customer.id, method_id):
            return error_page(404)
        return RedirectResponse("/payment-methods?done=default", status_code=303, headers=dict(NO_STORE))

    @customer_form("add_payment_method", needs="manage")
    async def remove_payment_method(self, request: Request, visit: Visit, _form: Form) -> Response:
        method_id: int = request.path_params["method_id"]
        if not await self.online_payments.remove_method(visit.company.id, visit.customer.id, method_id):
            return error_page(404)
        return RedirectResponse("/payment-methods?done=removed", status_code=303, headers=dict(NO_STORE))

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
        settled = await self.billing.settled_invoice(visit.scope, _document_id(request))
        if settled is None:
            return error_page(404)
        return self._page(
            visit,
            "portal/invoice.html",
            page="invoices",
            invoice=settled.invoice,
            payments=settled.payments,
            credit_notes=settled.credit_notes,
            today=self._today(visit),
        )

    @customer("invoices")
    async def invoice_pdf(self, request: Request, visit: Visit) -> Response:
        settled = await self.billing.settled_invoice(visit.scope, _document_id(request))
        if settled is None:
            return error_page(404)
        content = await run_in_threadpool(
            pdf().invoice_pdf,
            visit.company,
            visit.customer,
            settled.invoice,
            payments=settled.payments,
            credit_notes=settled.credit_notes,
            today=self._today(visit),
        )
        return pdf_response(content, download_name("invoice", settled.invoice.number))

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

    @customer("estimates", needs="pay")
    async def confirm_approval(self, request: Request, visit: Visit) -> Response:
        """Asks the customer to confirm the approval, showing the total they agree to."""
        estimate: Estimate | None = await self._document(request, visit, "estimate")
        if estimate is None:
            return error_page(404)
        if estimate_state(estimate, self._today(visit)) != "awaiting_approval":
            return RedirectResponse(f"/estimates/{estimate.id}", status_code=303, headers=dict(NO_STORE))
        return self._approval_page(visit, estimate)

    @customer_form("estimates", needs="pay")
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

    @customer_form("estimates", needs="pay")
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
        return self._estimate_page(visit, current, 409, notice=i18n.gettext(_ANSWER_NOTICES[action, answer]))

    # -- statements ----------------------------------------------------------------------------

    def _asked_month(self, request: Request, today: str) -> tuple[Month | None, str]:
        """The month asked for (None: the default), and what is wrong with the asking."""
        asked = request.query_params.get("month", "")
        if not asked:
            return None, ""
        try:
            month = Month.parse(asked[:16])
        except ValueError:
            return None, i18n.gettext("Choose a month from the list.")
        if month > Month.of(today):
            return None, i18n.gettext("Statements can be made up to the current month.")
        return month, ""

    async def _statement_of(
        self, visit: Visit, kind: StatementKind, asked: Month | None, today: str
    ) -> tuple[StatementMonths, Month, Statement]:
        company, customer = visit.company, visit.customer
        since = today_in(company, customer.created_at)
        return await self.billing.statement(
            company.id, customer.id, customer.currency, kind, asked, today=today, since=since
        )

    async def _statement(self, request: Request, visit: Visit, kind: StatementKind) -> Response:
        today = self._today(visit)
        asked, error = self._asked_month(request, today)
        months, month, statement = await self._statement_of(visit, kind, asked, today)
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

    async def _statement_pdf(self, request: Request, visit: Visit, kind: StatementKind) -> Response:
        today = self._today(visit)
        asked, error = self._asked_month(request, today)
        if error:
            return error_page(400, error)
        _months, month, statement = await self._statement_of(visit, kind, asked, today)
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
            countries=local_countries(),
            country_name=local_country_name(values["country"]),
            regions=countries.subdivisions(values["country"]),
        )

    @customer("update_billing_info", needs="manage")
    async def billing_info(self, request: Request, visit: Visit) -> Response:
        values = {field.name: getattr(visit.customer, field.name) for field in BILLING_INFO_FIELDS}
        values["locale"] = visit.customer.locale
        saved = request.query_params.get("saved") == "1"
        return self._billing_info_page(visit, values, {}, saved=saved)

    @customer_form("update_billing_info", needs="manage")
    async def update_billing_info(self, _request: Request, visit: Visit, form: Form) -> Response:
        values, errors = check_billing_info(form)
        locale = i18n.shipped(form.text("locale", 35)) or ""
        if errors:
            return self._billing_info_page(visit, values | {"locale": locale}, errors, saved=False, status_code=400)
        await self.billing.update_billing_info(visit.company.id, visit.customer.id, values, now=self.context.clock())
        await self.billing.set_customer_locale(visit.company.id, visit.customer.id, locale, now=self.context.clock())
        return RedirectResponse("/billing-info?saved=1", status_code=303, headers=dict(NO_STORE))

    # -- security: the customer's own sessions ---------------------------------------------------

    @customer("security")
    async def security(self, request: Request, visit: Visit) -> Response:
        """Where the customer is signed in: each live session's device and times, and a way to end it."""
        listed = await session_handles.live_sessions(self.context, visit.company, visit.session)
        notice = _SECURITY_NOTICES.get(request.query_params.get("done", ""), "")
        return self._page(visit, "portal/security.html", page="security", sessions=listed, notice=notice)

    @customer_form("security")
    async def end_session(self, request: Request, visit: Visit, _form: Form) -> Response:
        handle = request.path_params["handle"]
        if not await session_handles.end(self.context, visit.company, visit.session, {handle}):
            # Not one of this customer's other live sessions: the same 404 as any unknown document.
            return error_page(404, headers=page_headers(visit.company))
        return RedirectResponse("/security?done=ended", status_code=303, headers=dict(NO_STORE))

    @customer_form("security")
    async def end_other_sessions(self, _request: Request, visit: Visit, _form: Form) -> Response:
        await session_handles.end(self.context, visit.company, visit.session, None)
        return RedirectResponse("/security?done=ended_others", status_code=303, headers=dict(NO_STORE))

    # -- the language ---------------------------------------------------------------------------

    @customer_form("my_account")
    async def choose_locale(self, _request: Request, visit: Visit, form: Form) -> Response:
        """The language switcher: the customer's choice is saved as their preference, then the same page again."""
        locale = i18n.shipped(form.text("locale", 35)) or ""
        if locale:
            await self.billing.set_customer_locale(
                visit.company.id, visit.customer.id, locale, now=self.context.clock()
            )
        back = form.text("next", 200)
        target = back if portal_path(back) is not None else "/"
        return RedirectResponse(target, status_code=303, headers=dict(NO_STORE))

    # -- signing out -----------------------------------------------------------------------------

    async def sign_out(self, request: Request) -> Response:
        """Ends the session (a session that is already over signs out too: the browser only forgets it)."""
        context = self.context
        company = await company_for(request, context)
        if company is None:
            return error_page(404)
        framed = embedding.is_framed(request)
        try:
            form = await read_form(request, max_bytes=1024, max_fields=4)
        except UnreadableForm as refused:
            return error_page(refused.status, refused.message, headers=page_headers(company))
        # In a frame, the framed session signs out (and only it); elsewhere the top-level one.
        cookie_name = context.settings.session_cookie(framed)
        cookie = request.cookies.get(cookie_name)
        if not cookie:
            return RedirectResponse("/signed-out", status_code=303, headers=dict(NO_STORE))
        id_hash = sessions.hash_session_id(cookie)
        session = await context.store.session(id_hash)
        if session is not None and not sessions.csrf_matches(session, form.get("csrf_token", "")):
            return error_page(403, i18n.gettext(EXPIRED_FORM), headers=page_headers(company))
        await context.store.end_session(id_hash)
        target = company.sign_out_url or "/signed-out"
        headers = dict(NO_STORE)
        headers["Set-Cookie"] = sessions.clear_cookie_header(
            cookie_name, secure=context.settings.cookie_secure, framed=framed
        )
        headers["Clear-Site-Data"] = '"cache"'
        return RedirectResponse(target, status_code=303, headers=headers)

    async def signed_out(self, request: Request) -> Response:
        company = await company_for(request, self.context)
        speak(request, company)
        if company is None:
            return error_page(404)
        framed = embedding.is_framed(request)
        return render(
            "portal/signed_out.html",
            headers=page_headers(company, framed=framed),
            company=company,
            frame_origins=embedding.frame_origins(request, company.frame_ancestors),
        )

    async def logo(self, request: Request) -> Response:
        """The company's logo, re-encoded at upload: its URL names its SHA-256, so it is cached for good."""
        company = await company_for(request, self.context)
        if company is None or not company.logo_sha256 or request.path_params["sha256"] != company.logo_sha256:
            return error_page(404)
        found = await profile.logo_of(self.context.store, company)
        if found is None:
            return error_page(404)
        return logo_response(*found, cache="public, max-age=31536000, immutable")

    async def theme(self, request: Request) -> Response:
        """The company's accent colour as CSS (the CSP allows no inline styles)."""
        company = await company_for(request, self.context)
        body = theme_css(company.accent_color if company is not None else DEFAULT_ACCENT)
        return Response(body, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})
