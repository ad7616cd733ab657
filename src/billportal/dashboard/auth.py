"""Admin sign-in, sessions, CSRF, sudo mode, password change and the company switcher.

Admin sessions are apart from customer sessions: their own table, their own
cookie (``__Host-bp_admin``, host-only on the dashboard host, so it never
reaches a company's portal host), the same 256-bit ids stored hashed, and the
same idle and absolute timeouts. Every form carries a CSRF token: the session's
once signed in, and before that (the sign-in form) one that must match a
host-only cookie set with the form.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal import _links
from billportal.core import i18n
from billportal.core.bounds import storable_text
from billportal.core.config import Settings
from billportal.core.i18n import N_
from billportal.dashboard.forms import MAX_BODY, MAX_UPLOAD, normalize_email
from billportal.services import audit, passwords
from billportal.services.admins import role_label
from billportal.services.audit import Actor
from billportal.storage.records import Admin, AdminSession, Company, Membership
from billportal.web import sessions
from billportal.web.context import Context, client_ip
from billportal.web.errors import error_page
from billportal.web.forms import Form, UnreadableForm, read_form
from billportal.web.guards import AREAS, Guard, declare, role_opens
from billportal.web.ratelimit import FailureLimiter, Limit, address_key, storage_uri
from billportal.web.security import content_security_policy
from billportal.web.templates import NO_STORE, render

SUDO_SECONDS: Final = 5 * 60
FORM_COOKIE_SECONDS: Final = 60 * 60
# Failed password checks: per client address, per account (sign-in) and per admin (sudo, password change).
SIGN_IN_PER_IP: Final = Limit("admin-sign-in-ip", "20/10 minutes")
SIGN_IN_PER_ACCOUNT: Final = Limit("admin-sign-in-account", "10/15 minutes")
CONFIRM_PER_ADMIN: Final = Limit("admin-confirm", "5/5 minutes")
# argon2 at once in this process (each takes 64 MiB and tens of milliseconds of a core); one
# more is answered 429 at once rather than queued, so a burst costs neither memory nor waiting.
MAX_PASSWORD_CHECKS: Final = 4
BUSY: Final = N_("Too many sign-ins at this moment. Try again in a few seconds.")
_USER_AGENT_LIMIT: Final = 300
EXPIRED_FORM: Final = N_("This form has expired. Go back, reload the page and try again.")
UNREADABLE_FORM: Final = N_("The form could not be read. Reload the page and try again.")


def admin_cookie_name(settings: Settings) -> str:
    # __Host-: only over https, host-only, Path=/; the plain name is for http development.
    return "__Host-bp_admin" if settings.cookie_secure else "bp_admin"


def form_cookie_name(settings: Settings) -> str:
    return "__Host-bp_admin_form" if settings.cookie_secure else "bp_admin_form"


def actor_for(request: Request, admin: Admin) -> Actor:
    return Actor(admin.email, admin.id, client_ip(request), request.headers.get("user-agent", "")[:_USER_AGENT_LIMIT])


@dataclass(frozen=True, slots=True)
class AdminVisit:
    """A signed-in admin's request: who, their session, and the company they are administering."""

    admin: Admin
    session: AdminSession
    company: Company | None
    companies: list[Membership]
    actor: Actor

    def in_sudo(self, now: int) -> bool:
        return self.session.sudo_until is not None and now < self.session.sudo_until

    @property
    def role(self) -> str:
        """The admin's role in the company being administered ("" when none)."""
        if self.company is None:
            return ""
        return next((m.role for m in self.companies if m.company_id == self.company.id), "")


@dataclass(frozen=True, slots=True)
class Sudo:
    """A view that asks for the admin's password again unless they gave it in the last few minutes."""

    why: str  # "Revealing the SSO key": "... needs your password again"
    button: str  # "Confirm and reveal"
    secret_fields: tuple[str, ...] = ()  # never written back into the password page: typed again after it


class _Guarded(Protocol):
    @property
    def auth(self) -> AdminAuth: ...


DashboardView = Callable[[Any, Request], Awaitable[Response]]


def admin(
    *,
    form: bool = False,
    company: bool = True,
    password_change: bool = False,
    max_fields: int = 20,
    sudo: Sudo | None = None,
    upload: bool = False,
    area: str = "account",
) -> Callable[[Callable[..., Awaitable[Response]]], DashboardView]:
    """The view needs a signed-in admin, and it is called with what it declared it needs.

    The view gets ``(request, visit)``, then the company being administered
    (``company``, the default: an admin of none sees a page that says so), then
    the posted form (``form``: read, size-capped, its CSRF token checked).
    ``password_change`` lets in an admin who must still replace a one-time
    password; ``sudo`` asks for the password again unless it was given lately;
    ``upload`` lets the form be multipart with one file (up to MAX_UPLOAD bytes in all).
    ``area`` is the part of the company the view reads or changes (web.guards.AREAS), which the
    admin's role must open.
    """
    if area not in AREAS:
        raise ValueError(f"unknown dashboard area {area!r}")
    guard = Guard("admin", form=form, sudo=sudo is not None, area=area)

    def decorate(view: Callable[..., Awaitable[Response]]) -> DashboardView:
        @functools.wraps(view)
        async def guarded(self: _Guarded, request: Request) -> Response:
            entered = await self.auth.enter(
                request,
                guard,
                company=company,
                password_change=password_change,
                max_fields=max_fields,
                sudo=sudo,
                upload=upload,
            )
            if isinstance(entered, Response):
                return entered
            visit, posted = entered
            parts: list[Any] = [visit]
            if company:
                parts.append(visit.company)
            if form:
                parts.append(posted)
            return await view(self, request, *parts)

        declare(guarded, guard)
        return guarded

    return decorate


class AdminAuth:
    """Who is signed in to the dashboard, and the views that sign admins in and out."""

    def __init__(self, context: Context) -> None:
        self.context = context
        # Shared through Redis when configured, so every process counts an admin's failures.
        self.limiter = FailureLimiter(storage_uri(context.settings.redis_url))
        self.cookie = admin_cookie_name(context.settings)
        self.form_cookie = form_cookie_name(context.settings)
        self.password_checks = asyncio.Semaphore(MAX_PASSWORD_CHECKS)

    @property
    def auth(self) -> AdminAuth:
        """Itself: its own views are guarded like the dashboard's."""
        return self

    # -- the signed-in admin -----------------------------------------------------------

    async def visit(self, request: Request, *, password_change: bool = False) -> AdminVisit | Response:
        """The signed-in admin, or the answer that sends the browser to sign in.

        An admin with a one-time password reaches only the password change
        (``password_change=True``) until they have chosen their own.
        """
        context = self.context
        admins = context.store.admins
        cookie = request.cookies.get(self.cookie)
        if not cookie:
            return _to_sign_in()
        id_hash = sessions.hash_session_id(cookie)
        session = await admins.session(id_hash)
        now = context.clock()
        admin = await admins.admin(session.admin_id) if session is not None else None
        if session is None or admin is None or not sessions.is_live(session, now, context.timeouts):
            if session is not None:
                await admins.end_session(id_hash)
            return self._signed_out(_to_sign_in())
        memberships = await admins.memberships(admin.id)
        current = next((m for m in memberships if m.company_id == session.company_id), None)
        if current is None and memberships:
            current = memberships[0]
        company_id = current.company_id if current else None
        last_seen = now if sessions.needs_touch(session, now, context.timeouts) else session.last_seen_at
        if (company_id, last_seen) != (session.company_id, session.last_seen_at):
            await admins.update_session(id_hash, company_id=company_id, last_seen_at=last_seen)
            session = replace(session, company_id=company_id, last_seen_at=last_seen)
        if admin.must_change_password and not password_change:
            return RedirectResponse("/account", status_code=303, headers=dict(NO_STORE))
        company = await context.store.company(current.username) if current else None
        return AdminVisit(admin, session, company, memberships, actor_for(request, admin))

    async def enter(
        self,
        request: Request,
        guard: Guard,
        *,
        company: bool,
        password_change: bool,
        max_fields: int,
        sudo: Sudo | None,
        upload: bool = False,
    ) -> tuple[AdminVisit, Form] | Response:
        """Check what a view declared (a signed-in admin, a company, a form with its CSRF token, a recent password)."""
        visit = await self.visit(request, password_change=password_change)
        if isinstance(visit, Response):
            return visit
        blocked = self._blocked(visit, guard) if company else None
        if blocked is not None:
            return blocked
        form = await self._checked_form(request, visit, max_fields, upload) if guard.form else Form()
        if isinstance(form, Response):
            return form
        if sudo is not None and not visit.in_sudo(self.context.clock()):
            asked = await self._ask_password(request, visit, form, sudo)
            if asked is not None:
                return asked
        return visit, form

    def _blocked(self, visit: AdminVisit, guard: Guard) -> Response | None:
        """The page that refuses an admin of no company, or one whose role does not open the view's area."""
        if visit.company is None:
            if guard.form:
                return error_page(404, N_("You administer no company."))
            return self._page(visit, "dashboard/no_company.html", title=i18n.gettext("No company"))
        if not role_opens(visit.role, guard.area, writes=guard.form):
            # Before the form is read: a refused admin changes nothing, whatever they post.
            return self._page(
                visit,
                "dashboard/refused.html",
                status_code=403,
                title=i18n.gettext("Not open to your role"),
                role=role_label(visit.role),
                reads_only=role_opens(visit.role, guard.area),  # the area is open, its forms are not
            )
        return None

    async def _checked_form(
        self, request: Request, visit: AdminVisit, max_fields: int, upload: bool = False
    ) -> Form | Response:
        """The posted form, once its CSRF token matches the session's; else the page that refuses it."""
        try:
            if upload:
                form = await read_form(request, max_bytes=MAX_UPLOAD, max_fields=max_fields, max_files=1)
            else:
                form = await read_form(request, max_bytes=MAX_BODY, max_fields=max_fields)
        except UnreadableForm as refused:
            return error_page(refused.status, UNREADABLE_FORM if refused.status == 400 else refused.message)
        if not sessions.csrf_matches(visit.session, form.get("csrf_token", "")):
            return error_page(403, EXPIRED_FORM)
        return form

    async def _ask_password(self, request: Request, visit: AdminVisit, form: Form, sudo: Sudo) -> Response | None:
        """None once the password in the form is right; else the page that asks for it (again)."""
        password = form.get("password", "")
        mistake = await self.confirm_password(visit, password) if password else ""
        if mistake is None:
            return None
        return self._page(
            visit,
            "dashboard/confirm_password.html",
            status_code=(429 if mistake == i18n.gettext(BUSY) else 403) if mistake else 200,
            headers=self.portal_form_csp(visit.company),
            title=i18n.gettext("Confirm your password"),
            sudo=sudo,
            error=mistake,
            action=request.url.path,
            replay={
                name: value
                for name, value in form.items()
                if name not in ("csrf_token", "password", *sudo.secret_fields)
            },
        )

    def _page(self, visit: AdminVisit, template: str, *, status_code: int = 200, **context: Any) -> Response:
        return render(
            template,
            status_code=status_code,
            section="",
            admin=visit.admin,
            company=visit.company,
            companies=visit.companies,
            csrf_token=visit.session.csrf_token,
            notice="",
            **context,
        )

    def portal_form_csp(self, company: Company | None) -> dict[str, str]:
        """The page's policy where a form may end up in the company's portal (browsers check redirects too)."""
        if company is None:
            return {}
        portal = _links.portal_url(company.username, self.context.settings.base_url)
        return {"Content-Security-Policy": content_security_policy(form_targets=[portal])}

    async def confirm_password(self, visit: AdminVisit, password: str) -> str | None:
        """Sudo mode: the admin's password again. None when confirmed, else what went wrong."""
        key = str(visit.admin.id)
        limiter = self.limiter
        wait = await limiter.retry_after(CONFIRM_PER_ADMIN, key)
        if wait:
            return _too_many_passwords(wait)
        if self.password_checks.locked():
            return i18n.gettext(BUSY)
        async with self.password_checks:
            wait = await limiter.attempt(CONFIRM_PER_ADMIN, key)
            if wait:
                return _too_many_passwords(wait)
            if await self._password_ok(visit.admin.password_hash, password):
                await limiter.succeeded(CONFIRM_PER_ADMIN, key)
                now = self.context.clock()
                await self.context.store.admins.update_session(visit.session.id_hash, sudo_until=now + SUDO_SECONDS)
                return None
        wait = await limiter.failed(CONFIRM_PER_ADMIN, key, counted=True)
        return _too_many_passwords(wait) if wait else i18n.gettext("That password is not right.")

    async def _password_ok(self, password_hash: str, password: str) -> bool:
        # argon2 takes tens of milliseconds of CPU: off the event loop, so sign-ins by link never wait on it.
        # Callers hold one of self.password_checks.
        ok: bool = await run_in_threadpool(passwords.verify_password, password_hash, password)
        return ok

    def _signed_out(self, response: Response) -> Response:
        response.headers.append(
            "set-cookie", sessions.clear_cookie_header(self.cookie, secure=self.context.settings.cookie_secure)
        )
        return response

    # -- sign in and out ---------------------------------------------------------------

    async def sign_in_page(self, request: Request) -> Response:
        visit = await self.visit(request, password_change=True)
        if isinstance(visit, AdminVisit):
            return RedirectResponse("/", status_code=303, headers=dict(NO_STORE))
        return self._sign_in_form(request)

    def _sign_in_form(
        self, request: Request, *, status_code: int = 200, email: str = "", error: str = "", retry_after: int = 0
    ) -> Response:
        token = sessions.new_csrf_token()
        headers = dict(NO_STORE)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        response = render(
            "dashboard/sign_in.html",
            status_code=status_code,
            headers=headers,
            title=i18n.gettext("Sign in"),
            company=None,
            csrf_token=token,
            email=email,
            error=error,
            notice=i18n.gettext(_NOTICES.get(request.query_params.get("notice", ""), "")),
        )
        response.headers.append(
            "set-cookie",
            sessions.cookie_header(
                self.form_cookie, token, secure=self.context.settings.cookie_secure, max_age=FORM_COOKIE_SECONDS
            ),
        )
        return response

    async def sign_in(self, request: Request) -> Response:
        try:
            form = await read_form(request, max_bytes=MAX_BODY, max_fields=4)
        except UnreadableForm as refused:
            return error_page(refused.status, UNREADABLE_FORM if refused.status == 400 else refused.message)
        expected = request.cookies.get(self.form_cookie, "")
        if not expected or not sessions.same_token(expected, form.get("csrf_token", "")):
            return self._sign_in_form(request, status_code=403, error=i18n.gettext(EXPIRED_FORM))
        email = normalize_email(form.text("email", 300))
        return await self._check_sign_in(request, email, form.text("password", passwords.MAX_LENGTH + 1))

    async def _check_sign_in(self, request: Request, email: str, password: str) -> Response:
        """The session, or the answer that refuses it: past a limit, too busy, or a wrong email or password."""
        limits = ((SIGN_IN_PER_IP, address_key(request)), (SIGN_IN_PER_ACCOUNT, email))
        limiter = self.limiter
        wait = max([await limiter.retry_after(limit, key) or 0 for limit, key in limits])
        if wait:
            return self._too_many(request, email, wait)
        if self.password_checks.locked():
            return self._sign_in_form(request, status_code=429, email=email, error=i18n.gettext(BUSY), retry_after=1)
        admins = self.context.store.admins
        async with self.password_checks:
            # Counted before the password is checked: of concurrent attempts, only the allowance is checked.
            wait = max([await limiter.attempt(limit, key) or 0 for limit, key in limits])
            if wait:
                return self._too_many(request, email, wait)
            # (no address holds a NUL, which PostgreSQL refuses even to compare)
            admin = await admins.admin_by_email(email) if email and storable_text(email) else None
            # An unknown email checks the decoy hash: the same work, the same time as a wrong password.
            password_hash = admin.password_hash if admin is not None else passwords.decoy_hash()
            right = await self._password_ok(password_hash, password)
            if admin is not None and right:
                for limit, key in limits:
                    await limiter.succeeded(limit, key)
                return await self._start_session(request, admin, password)
        if admin is not None:
            memberships = await admins.memberships(admin.id)
            await audit.record(
                self.context.store,
                actor_for(request, admin),
                "admin.sign_in_failed",
                self.context.clock(),
                company_ids=[m.company_id for m in memberships],
            )
        wait = max([await limiter.failed(limit, key, counted=True) or 0 for limit, key in limits])
        if wait:
            return self._too_many(request, email, wait)
        return self._sign_in_form(
            request, status_code=401, email=email, error=i18n.gettext("Email or password is incorrect.")
        )

    def _too_many(self, request: Request, email: str, wait: int) -> Response:
        message = i18n.gettext("Too many failed sign-ins. Try again in %(wait)s seconds.") % {"wait": wait}
        return self._sign_in_form(request, status_code=429, email=email, error=message, retry_after=wait)

    async def _start_session(self, request: Request, admin: Admin, password: str) -> Response:
        context = self.context
        admins = context.store.admins
        now = context.clock()
        if passwords.needs_rehash(admin.password_hash):
            fresh: str = await run_in_threadpool(passwords.hash_password, password)
            await admins.rehash(admin.id, admin.password_hash, fresh)
        memberships = await admins.memberships(admin.id)
        old_cookie = request.cookies.get(self.cookie)
        if old_cookie:
            # Whatever session the browser came with is over: no fixation.
            await admins.end_session(sessions.hash_session_id(old_cookie))
        session_id = sessions.new_session_id()
        await admins.create_session(
            AdminSession(
                id_hash=sessions.hash_session_id(session_id),
                admin_id=admin.id,
                company_id=memberships[0].company_id if memberships else None,
                csrf_token=sessions.new_csrf_token(),
                created_at=now,
                last_seen_at=now,
                expires_at=now + context.timeouts.absolute,
            )
        )
        await audit.record(
            context.store,
            actor_for(request, admin),
            "admin.signed_in",
            now,
            company_ids=[m.company_id for m in memberships],
        )
        response = RedirectResponse(
            "/account" if admin.must_change_password else "/", status_code=303, headers=dict(NO_STORE)
        )
        secure = context.settings.cookie_secure
        response.headers.append(
            "set-cookie",
            sessions.cookie_header(self.cookie, session_id, secure=secure, max_age=context.timeouts.absolute),
        )
        response.headers.append("set-cookie", sessions.clear_cookie_header(self.form_cookie, secure=secure))
        return response

    @admin(form=True, company=False, password_change=True, max_fields=2)
    async def sign_out(self, _request: Request, visit: AdminVisit, _form: Form) -> Response:
        await self.context.store.admins.end_session(visit.session.id_hash)
        response = RedirectResponse("/sign-in?notice=signed_out", status_code=303, headers=dict(NO_STORE))
        response.headers["Clear-Site-Data"] = '"cache"'
        return self._signed_out(response)

    # -- account and company switcher --------------------------------------------------

    @admin(company=False, password_change=True)
    async def account(self, request: Request, visit: AdminVisit) -> Response:
        return self._account_page(request, visit)

    def _account_page(
        self, request: Request, visit: AdminVisit, *, status_code: int = 200, errors: dict[str, str] | None = None
    ) -> Response:
        return render(
            "dashboard/account.html",
            status_code=status_code,
            title=i18n.gettext("Your account"),
            admin=visit.admin,
            company=visit.company,
            companies=visit.companies,
            csrf_token=visit.session.csrf_token,
            section="account",
            notice=i18n.gettext(_NOTICES.get(request.query_params.get("notice", ""), "")),
            errors=errors or {},
            min_length=passwords.MIN_LENGTH,
        )

    @admin(form=True, company=False, password_change=True, max_fields=5)
    async def change_password(self, request: Request, visit: AdminVisit, form: Form) -> Response:
        current = form.text("current_password", passwords.MAX_LENGTH + 1)
        new = form.text("new_password", passwords.MAX_LENGTH + 1)
        errors: dict[str, str] = {}
        problem = passwords.password_problem(new)
        if problem:
            errors["new_password"] = problem
        elif new != form.get("confirm_password", ""):
            errors["confirm_password"] = i18n.gettext("The two new passwords differ.")
        elif new == current:
            errors["new_password"] = i18n.gettext("Choose a password other than the current one.")
        if errors:
            return self._account_page(request, visit, status_code=400, errors=errors)
        mistake = await self.confirm_password(visit, current)
        if mistake:
            return self._account_page(request, visit, status_code=403, errors={"current_password": mistake})
        now = self.context.clock()
        if self.password_checks.locked():
            return self._account_page(request, visit, status_code=429, errors={"new_password": i18n.gettext(BUSY)})
        async with self.password_checks:
            password_hash: str = await run_in_threadpool(passwords.hash_password, new)
        await self.context.store.admins.set_password(
            visit.admin.id, password_hash, must_change=False, now=now, keep_session=visit.session.id_hash
        )
        await audit.record(
            self.context.store,
            visit.actor,
            "admin.password_changed",
            now,
            company_ids=[m.company_id for m in visit.companies],
            detail="other sessions ended",
        )
        target = "/?notice=password_changed" if visit.admin.must_change_password else "/account?notice=password_changed"
        return RedirectResponse(target, status_code=303, headers=dict(NO_STORE))

    @admin(form=True, company=False, max_fields=3)
    async def switch_company(self, _request: Request, visit: AdminVisit, form: Form) -> Response:
        wanted = form.get("company_id", "")
        target = next((m for m in visit.companies if str(m.company_id) == wanted), None)
        if target is None:
            return error_page(404, N_("You do not administer that company."))
        await self.context.store.admins.update_session(visit.session.id_hash, company_id=target.company_id)
        # The SSO page, if the admin's role in that company opens it; else the home page, which every role opens.
        landing = "/settings/developers/sso" if role_opens(target.role, "developer") else "/"
        return RedirectResponse(landing, status_code=303, headers=dict(NO_STORE))


def _too_many_passwords(wait: int) -> str:
    return i18n.gettext("Too many wrong passwords. Try again in %(wait)s seconds.") % {"wait": wait}


def _to_sign_in() -> Response:
    return RedirectResponse("/sign-in", status_code=303, headers=dict(NO_STORE))


_NOTICES: Final = {
    "signed_out": N_("You have signed out."),
    "password_changed": N_("Your password has been changed. Your other sessions have been signed out."),
    "invitation_accepted": N_("The invitation is accepted. Sign in to administer the company."),
}
