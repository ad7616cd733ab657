"""``GET /login/{token}`` and ``POST /login``: a company's signed link becomes a session."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal.core import i18n
from billportal.sso.pages import DEFAULT_PAGE, is_landing, landing_path
from billportal.sso.reasons import Reason
from billportal.sso.tokens import MAX_TOKEN_BYTES, Claims, Rejection, verify
from billportal.storage.records import Company, NewSignIn, Session, SignInEvent
from billportal.web import embedding, sessions
from billportal.web.context import Context, client_ip, company_for
from billportal.web.errors import error_page
from billportal.web.forms import Form, UnreadableForm, read_form
from billportal.web.ratelimit import FailureLimiter, Limit, address_key, storage_uri
from billportal.web.security import content_security_policy
from billportal.web.templates import render
from billportal.web.urls import with_query

_SIGN_IN_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
SIGN_IN_HEADERS = _SIGN_IN_HEADERS
_NAVIGATION_DESTINATIONS = frozenset({"document", "iframe", "frame"})
_USER_AGENT_LIMIT = 300
KEY_LAST_USED_RESOLUTION = 60
# Why a link may fail that a fresh one from the company's app mends: it was good, and is spent.
RECOVERABLE: Final = frozenset({Reason.EXPIRED, Reason.JTI_REPLAYED, Reason.ISSUED_BEFORE_CUTOFF})
RECOVERY_SECONDS: Final = 5 * 60  # at most one trip back to the company's app per browser in this time


class SignIn:
    """The sign-in endpoints of a company's portal host."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._key_last_used: dict[tuple[int, str], int] = {}
        settings = context.settings
        self.limiter = FailureLimiter(storage_uri(settings.redis_url))
        self._per_ip = Limit("login-ip", settings.login_failures_per_ip)
        self._per_company = Limit("login-company", settings.login_failures_per_company)

    async def get(self, request: Request) -> Response:
        return await self._sign_in(request, request.path_params["token"], request.query_params.get("redirect_to"))

    async def post(self, request: Request) -> Response:
        company = await company_for(request, self.context)
        if company is None:
            return error_page(404)
        if self.limiter.blocking and (limited := await self._rate_limited(request, company, whole_company=False)):
            return limited
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_TOKEN_BYTES + 1024:
            return await self._reject(request, company, Rejection(Reason.TOKEN_TOO_LONG), self.context.clock())
        try:
            form = await read_form(request, max_bytes=MAX_TOKEN_BYTES + 1024, max_fields=4, multipart=True)
        except UnreadableForm:
            # A body past the form's limits, or not a form: refused as a malformed token.
            form = Form()
        redirect_to = form.get("redirect_to") or request.query_params.get("redirect_to")
        return await self._sign_in(request, form.get("token", ""), redirect_to, company=company)

    async def _sign_in(
        self, request: Request, token: str, redirect_to: str | None, company: Company | None = None
    ) -> Response:
        context = self.context
        if company is None:
            company = await company_for(request, context)
            if company is None:
                return error_page(404)
            # The address's own failures are checked before verifying (POST's before
            # reading its body); an empty table of blocked keys makes this free.
            if self.limiter.blocking and (limited := await self._rate_limited(request, company, whole_company=False)):
                return limited
        now = context.clock()

        outcome: Claims | Rejection
        framed = embedding.is_framed(request)
        if not company.sso_enabled:
            outcome = Rejection(Reason.SSO_DISABLED)
        elif framed and not embedding.framed_sign_in_allowed(request, company.frame_ancestors):
            # Login CSRF in a frame: only a page of a listed site may sign the frame in.
            outcome = Rejection(Reason.FRAME_NOT_ALLOWED)
        elif _cross_site_subresource(request):
            # Login CSRF: an <img> or <script> on another site must not sign the
            # browser in; a top-level navigation from the company's app may.
            outcome = Rejection(Reason.CROSS_SITE_REQUEST)
        else:
            outcome = verify(token, company.sso_keys, company.policy, now)
        if isinstance(outcome, Rejection):
            return await self._reject(request, company, outcome, now, redirect_to=redirect_to)
        claims = outcome
        if not await context.store.customer_exists(company.id, claims.customer_id):
            rejection = Rejection(Reason.CUSTOMER_UNKNOWN, claims.kid, claims.issuer, claims.customer_id)
            return await self._reject(request, company, rejection, now, jti=claims.jti, redirect_to=redirect_to)

        session_id = sessions.new_session_id()
        session = Session(
            id_hash=sessions.hash_session_id(session_id),
            company_id=company.id,
            customer_id=claims.customer_id,
            csrf_token=sessions.new_csrf_token(),
            created_at=now,
            last_seen_at=now,
            expires_at=now + context.timeouts.absolute,
        )
        # The token's locale claim, else the link's ?locale= (both checked against the shipped list): the
        # landing page's ?locale= keeps it for the session, so the sign-in's own statement stays as it was.
        locale = claims.locale or i18n.shipped(request.query_params.get("locale")) or ""
        kid = claims.kid
        event = self._event(
            request,
            company,
            now,
            result="success",
            reason=Reason.OK,
            customer_id=claims.customer_id,
            issuer=claims.issuer,
            jti=claims.jti,
            kid=kid,
        )
        key_used = None
        if now - self._key_last_used.get((company.id, kid), 0) >= KEY_LAST_USED_RESOLUTION:
            self._key_last_used[(company.id, kid)] = now
            key_used = (kid, now)
        new = NewSignIn(
            session=session,
            event=event,
            jti_expires_at=claims.exp + company.policy.leeway if claims.jti is not None else None,
            key_last_used=key_used,
        )
        if not await context.store.complete_sign_in(new):
            # The single-use mark was taken already; the store logged the replay.
            await self._count_failure(request, company, now)
            return self._failure(request, company, Reason.JTI_REPLAYED, redirect_to)

        # A framed sign-in (allowed above) gets the partitioned cookie, any other the Lax one.
        cookie_name = context.settings.session_cookie(framed)
        old_cookie = request.cookies.get(cookie_name)
        if old_cookie:
            # Whatever session the browser came with is over: no fixation.
            await context.store.end_session(sessions.hash_session_id(old_cookie))
        return self.signed_in(request, session_id, redirect_to, framed, locale=locale)

    def signed_in(
        self, request: Request, session_id: str, redirect_to: str | None, framed: bool, *, locale: str = ""
    ) -> Response:
        """The 303 to the landing page (with ``?locale=``, the session's language), with the new session's cookie."""
        settings = self.context.settings
        next_cookie = settings.next_page_cookie_name
        remembered = request.cookies.get(next_cookie)
        landing = landing_path(redirect_to, remembered)
        if locale:
            landing += ("&" if "?" in landing else "?") + urlencode({"locale": locale})
        response = RedirectResponse(landing, status_code=303, headers=_SIGN_IN_HEADERS)
        if remembered is not None:
            forget = sessions.clear_cookie_header(next_cookie, secure=settings.cookie_secure)
            response.raw_headers.append((b"set-cookie", forget.encode("latin-1")))
        cookie = sessions.cookie_header(
            settings.session_cookie(framed),
            session_id,
            secure=settings.cookie_secure,
            max_age=self.context.timeouts.absolute,
            framed=framed,
        )
        response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
        return response

    def _event(
        self,
        request: Request,
        company: Company,
        now: int,
        *,
        result: str,
        reason: Reason,
        customer_id: int | None,
        issuer: str | None,
        jti: str | None,
        kid: str | None,
    ) -> SignInEvent:
        return SignInEvent(
            company_id=company.id,
            at=now,
            result=result,
            reason=reason.value,
            customer_id=customer_id,
            issuer=issuer[:200] if issuer is not None else None,  # a signed iss may be longer than the column
            kid=kid,
            jti=jti[:255] if jti else None,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", "")[:_USER_AGENT_LIMIT],
        )

    async def _reject(
        self,
        request: Request,
        company: Company,
        rejection: Rejection,
        now: int,
        *,
        jti: str | None = None,
        redirect_to: str | None = None,
    ) -> Response:
        # The company's limit slows failures only: anyone can fail, so it must never refuse a
        # correctly signed link (verifying one costs microseconds; its key cannot be guessed).
        if self.limiter.blocking and (limited := await self._rate_limited(request, company, whole_company=True)):
            return limited
        event = self._event(
            request,
            company,
            now,
            result="failure",
            reason=rejection.reason,
            customer_id=rejection.customer_id,
            issuer=rejection.issuer,
            jti=jti,
            kid=rejection.kid,
        )
        await self.context.store.record_event(event)
        await self.context.webhooks.sign_in_failed(
            company.id, event.reason, customer_id=event.customer_id, issuer=event.issuer, ip=event.ip, now=now
        )
        await self._count_failure(request, company, now)
        return self._failure(request, company, rejection.reason, redirect_to)

    async def _rate_limited(self, request: Request, company: Company, *, whole_company: bool) -> Response | None:
        """The 429 answer if this address (or, for a failure, this company) has used up its failures."""
        limiter = self.limiter
        wait = await limiter.retry_after(self._per_ip, address_key(request)) or 0
        if whole_company:
            wait = max(wait, await limiter.retry_after(self._per_company, str(company.id)) or 0)
        if not wait:
            return None
        # One page whichever limit it is, and whatever the failures were.
        return error_page(429, headers={**_SIGN_IN_HEADERS, "Retry-After": str(wait)})

    async def _count_failure(self, request: Request, company: Company, now: int) -> None:
        limiter = self.limiter
        address = await limiter.failed(self._per_ip, address_key(request))
        whole_company = await limiter.failed(self._per_company, str(company.id))
        if address or whole_company:
            # Logged once, when the block begins: refused attempts write nothing.
            event = self._event(
                request,
                company,
                now,
                result="failure",
                reason=Reason.RATE_LIMITED,
                customer_id=None,
                issuer=None,
                jti=None,
                kid=None,
            )
            await self.context.store.record_event(event)

    def _failure(self, request: Request, company: Company, reason: Reason, redirect_to: str | None) -> Response:
        if company.error_url:
            return RedirectResponse(
                with_query(company.error_url, error=reason.value), status_code=303, headers=_SIGN_IN_HEADERS
            )
        settings = self.context.settings
        if (
            company.sign_in_url
            and reason in RECOVERABLE
            and settings.recovery_cookie_name not in request.cookies
            and not embedding.is_framed(request)
        ):
            # A link that was good but is spent (expired, used, cut off): the company's app makes a
            # fresh one for the page asked for. Once in a while per browser, so that an app whose
            # links keep failing (a clock far off, say) cannot bounce the browser back and forth.
            page = redirect_to if redirect_to is not None and is_landing(redirect_to) else DEFAULT_PAGE
            response = RedirectResponse(
                with_query(company.sign_in_url, redirect_to=page), status_code=303, headers=_SIGN_IN_HEADERS
            )
            cookie = sessions.cookie_header(
                settings.recovery_cookie_name, "1", secure=settings.cookie_secure, max_age=RECOVERY_SECONDS
            )
            response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
            return response
        if company.email_sign_in and not embedding.is_framed(request):
            # No app to send the browser back to, but the customer can ask for a link by email.
            page = redirect_to if redirect_to is not None and len(redirect_to) <= 40 and is_landing(redirect_to) else ""
            return email_form(company, page=page, failed=True, status_code=401)
        # One page for every reason: the reason goes to the sign-in log only. A frame of a
        # listed site shows it; any other site's frame is blocked (frame-ancestors).
        headers = {
            **_SIGN_IN_HEADERS,
            "Content-Security-Policy": content_security_policy(frame_ancestors=company.frame_ancestors),
        }
        speak_to_visitor(request, company)
        return render("sign_in_failed.html", status_code=401, headers=headers, company=company)


def speak_to_visitor(request: Request, company: Company) -> None:
    """Before sign-in: the language asked for (``?locale=``, then the browser's), else the company's default."""
    asked = [request.query_params.get("locale"), i18n.negotiate(request.headers.get("accept-language", ""))]
    i18n.activate(i18n.choose([*asked, company.default_locale]))


def email_form(company: Company, *, page: str, failed: bool, status_code: int, error: str = "") -> Response:
    """The email sign-in form (``failed``: after a link that did not work, which it says without the reason)."""
    headers = {
        **_SIGN_IN_HEADERS,
        "Content-Security-Policy": content_security_policy(frame_ancestors=company.frame_ancestors),
    }
    return render(
        "portal/email_sign_in.html",
        status_code=status_code,
        headers=headers,
        company=company,
        page=page,
        failed=failed,
        error=error,
    )


def _cross_site_subresource(request: Request) -> bool:
    headers = request.headers
    if headers.get("sec-fetch-site") != "cross-site":
        return False
    return headers.get("sec-fetch-dest", "document") not in _NAVIGATION_DESTINATIONS
