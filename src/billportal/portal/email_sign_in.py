"""Email sign-in on a company's portal host: ``/login``, the emailed link's confirmation page, its button, the code.

The rules (single use, expiry, tries) are services/email_links.py's; this module is the HTTP side:
the same answer in the same time for any address, rate limits per address and per client
address (an IPv6 client as its /64), and the sign-in log (method ``email``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal.core.i18n import N_
from billportal.portal.signin import SIGN_IN_HEADERS, SignIn, email_form, speak_to_visitor
from billportal.services import email_links
from billportal.services.mail import valid_address
from billportal.sso.pages import DEFAULT_PAGE, is_landing
from billportal.sso.reasons import Reason
from billportal.storage.records import Company, Session, SignInEvent
from billportal.web import devices, embedding, sessions
from billportal.web.context import Context, client_ip, company_for
from billportal.web.errors import error_page
from billportal.web.forms import Form, UnreadableForm, read_form
from billportal.web.ratelimit import FailureLimiter, Limit, address_key, storage_uri
from billportal.web.security import content_security_policy
from billportal.web.templates import render
from billportal.web.urls import with_query

# Every answer to the email form takes at least this long, whether or not the address is known:
# the work for a known one (a transaction, a message queued) hides under it.
ANSWER_SECONDS: Final = 0.4
_USER_AGENT_LIMIT: Final = 300
ACCOUNTS_PATH: Final = "/accounts"
_ADDRESS_LIMIT: Final = 254
_WRONG_CODE: Final = N_("That code is not right, or it has expired. Check the newest email, or ask for a new link.")
_DEAD_CODE: Final = N_("That code was tried too many times and no longer works. Ask for a new link.")


class EmailSignIn:
    """The email sign-in endpoints of a company's portal host."""

    def __init__(self, context: Context, sign_in: SignIn) -> None:
        self.context = context
        self.sign_in = sign_in
        settings = context.settings
        self.limiter = FailureLimiter(storage_uri(settings.redis_url))
        self._requests_per_ip = Limit("email-ip", settings.email_sign_ins_per_ip)
        self._requests_per_address = Limit("email-address", settings.email_sign_ins_per_address)
        self._failures_per_ip = Limit("email-failures-ip", settings.login_failures_per_ip)

    def _headers(self, company: Company) -> dict[str, str]:
        return {
            **SIGN_IN_HEADERS,
            "Content-Security-Policy": content_security_policy(frame_ancestors=company.frame_ancestors),
        }

    async def page(self, request: Request) -> Response:
        """``GET /login``: the email form, or (email sign-in off) the company's own sign-in or the page that says so."""
        company = await company_for(request, self.context)
        if company is None:
            return error_page(404)
        speak_to_visitor(request, company)
        wanted = request.query_params.get("redirect_to", "")
        page = wanted if wanted and len(wanted) <= 40 and is_landing(wanted) else ""
        if company.email_sign_in and not embedding.is_framed(request):
            return email_form(company, page=page, failed=False, status_code=200)
        if company.sign_in_url:
            url = with_query(company.sign_in_url, redirect_to=page or DEFAULT_PAGE)
            return RedirectResponse(url, status_code=303, headers=SIGN_IN_HEADERS)
        return render("portal/sign_in_needed.html", headers=self._headers(company), company=company)

    async def request_link(self, request: Request) -> Response:
        """``POST /login/email``: one answer for every address, in one time; a link and code to a known one."""
        started = time.monotonic()
        company, form, refused = await self._form(request)
        if refused is not None:
            return refused
        assert company is not None
        email = form.text("email", _ADDRESS_LIMIT + 1).strip()
        page = form.text("redirect_to", 41)
        page = page if page and is_landing(page) else ""
        if not valid_address(email):
            return email_form(company, page=page, failed=False, status_code=400, error=N_("Enter an email address."))
        address = email_links.normal_email(email)
        limiter = self.limiter
        # Every request counts (not only failures): each may send an email.
        wait = await limiter.attempt(self._requests_per_ip, address_key(request))
        if not wait:
            wait = await limiter.attempt(self._requests_per_address, hashlib.sha256(address.encode()).hexdigest())
        if wait:
            await _pad(started)
            return error_page(429, headers={**SIGN_IN_HEADERS, "Retry-After": str(wait)})
        context = self.context
        await email_links.request_link(
            context.store, company, address, page=page, now=context.clock(), base_url=context.settings.base_url
        )
        await _pad(started)
        return render("portal/email_sent.html", headers=self._headers(company), company=company, email=email, error="")

    async def confirmation(self, request: Request) -> Response:
        """``GET /login/email/{token}``: the page with the button. It reads only: a scanner's GET changes nothing."""
        company = await company_for(request, self.context)
        if company is None:
            return error_page(404)
        speak_to_visitor(request, company)
        token = request.path_params["token"]
        if company.email_sign_in:
            state = await email_links.check_link(self.context.store, company, token, self.context.clock())
            if state is Reason.OK:
                return render(
                    "portal/email_confirm.html",
                    headers=self._headers(company),
                    company=company,
                    token=token,
                    button=email_links.button_token(token),
                )
            return email_form(company, page="", failed=True, status_code=401)
        # Email sign-in was turned off since: the generic page, as for any link that does not work.
        return render("sign_in_failed.html", status_code=401, headers=self._headers(company), company=company)

    async def press(self, request: Request) -> Response:
        """``POST /login/email/confirm``: the button; the link is used, once."""
        company, form, refused = await self._form(request, failures=True)
        if refused is not None:
            return refused
        assert company is not None
        now = self.context.clock()
        token = form.text("token", email_links.MAX_TOKEN_LENGTH + 1)
        session_id, make = self._session_for(request, company, now)
        outcome = await email_links.press(
            self.context.store, company, token, form.text("button", 100), now=now, sign_in=make
        )
        if outcome.reason is not Reason.OK:
            await self._failed(request, company, outcome, now)
            return email_form(company, page="", failed=True, status_code=401)
        return await self._signed_in(request, session_id, outcome)

    async def code(self, request: Request) -> Response:
        """``POST /login/code``: the 6-digit code, for the address it was sent to."""
        company, form, refused = await self._form(request, failures=True)
        if refused is not None:
            return refused
        assert company is not None
        now = self.context.clock()
        email = form.text("email", _ADDRESS_LIMIT).strip()
        session_id, make = self._session_for(request, company, now)
        outcome = await email_links.enter_code(
            self.context.store, company, email, form.text("code", 20), now=now, sign_in=make
        )
        if outcome.reason is not Reason.OK:
            await self._failed(request, company, outcome, now)
            error = _DEAD_CODE if outcome.reason is Reason.EMAIL_CODE_EXHAUSTED else _WRONG_CODE
            return render(
                "portal/email_sent.html",
                status_code=401,
                headers=self._headers(company),
                company=company,
                email=email,
                error=error,
            )
        return await self._signed_in(request, session_id, outcome)

    async def _form(self, request: Request, *, failures: bool = False) -> tuple[Company | None, Form, Response | None]:
        """The company and the posted form, or the answer that refuses them."""
        company = await company_for(request, self.context)
        if company is None:
            return None, Form(), error_page(404)
        speak_to_visitor(request, company)
        if not company.email_sign_in or embedding.is_framed(request):
            return company, Form(), error_page(404)
        if _from_another_site(request):
            # Login CSRF: another site's page must not sign the browser in with its own code.
            return company, Form(), error_page(403, N_("This form must be sent from the sign-in page."))
        if failures and self.limiter.blocking:
            wait = await self.limiter.retry_after(self._failures_per_ip, address_key(request))
            if wait:
                return company, Form(), error_page(429, headers={**SIGN_IN_HEADERS, "Retry-After": str(wait)})
        try:
            form = await read_form(request, max_bytes=2048, max_fields=6)
        except UnreadableForm as unreadable:
            return company, Form(), error_page(unreadable.status, unreadable.message)
        return company, form, None

    def _session_for(self, request: Request, company: Company, now: int) -> tuple[str, email_links.SignInFor]:
        """A new session's id, and what a successful press or code writes for the customer it names."""
        user_agent = request.headers.get("user-agent", "")[:_USER_AGENT_LIMIT]
        session_id = sessions.new_session_id()

        def make(customer_id: int, contact_id: int | None, email: str) -> tuple[Session, SignInEvent]:
            session = Session(
                id_hash=sessions.hash_session_id(session_id),
                company_id=company.id,
                customer_id=customer_id,
                csrf_token=sessions.new_csrf_token(),
                created_at=now,
                last_seen_at=now,
                expires_at=now + self.context.timeouts.absolute,
                device=devices.describe(user_agent),
                contact_id=contact_id,
                email=email,
            )
            event = self._event(request, company, now, Reason.OK, customer_id, contact_id=contact_id)
            return session, event

        return session_id, make

    def _event(
        self,
        request: Request,
        company: Company,
        now: int,
        reason: Reason,
        customer_id: int | None,
        *,
        contact_id: int | None = None,
    ) -> SignInEvent:
        return SignInEvent(
            company_id=company.id,
            at=now,
            result="success" if reason is Reason.OK else "failure",
            reason=reason.value,
            customer_id=customer_id,
            issuer=None,
            kid=None,
            jti=None,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", "")[:_USER_AGENT_LIMIT],
            method="email",
            contact_id=contact_id,
        )

    async def _failed(self, request: Request, company: Company, outcome: email_links.Outcome, now: int) -> None:
        event = self._event(request, company, now, outcome.reason, outcome.customer_id, contact_id=outcome.contact_id)
        context = self.context
        await context.store.record_event(event)
        await context.webhooks.sign_in_failed(
            company.id, event.reason, customer_id=event.customer_id, issuer=None, ip=event.ip, now=now
        )
        if await self.limiter.failed(self._failures_per_ip, address_key(request)):
            blocked = self._event(request, company, now, Reason.RATE_LIMITED, None)
            await context.store.record_event(blocked)

    async def _signed_in(self, request: Request, session_id: str, outcome: email_links.Outcome) -> Response:
        old_cookie = request.cookies.get(self.context.settings.session_cookie_name)
        if old_cookie:
            # Whatever session the browser came with is over: no fixation.
            await self.context.store.end_session(sessions.hash_session_id(old_cookie))
        response = self.sign_in.signed_in(request, session_id, outcome.page or None, framed=False)
        if outcome.accounts > 1:
            # The address signs in to several accounts: the person picks one first (portal/accounts.py).
            response.headers["location"] = ACCOUNTS_PATH
        return response


async def _pad(started: float) -> None:
    """Wait out the rest of :data:`ANSWER_SECONDS` from ``started``."""
    left = ANSWER_SECONDS - (time.monotonic() - started)
    if left > 0:
        await asyncio.sleep(left)


def _from_another_site(request: Request) -> bool:
    """Whether the browser says the form came from another site (another company's host is another site too).

    Sec-Fetch-Site decides when the browser sends it. Without it, the Origin's host must be this one; an
    ``Origin: null`` passes, since the portal's pages send no referrer and such a browser says null then.
    """
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin", "")
    if origin and origin != "null":
        return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()
    return False
