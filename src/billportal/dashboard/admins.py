"""Security > Admins: the company's admins and their roles, invitations by email, and the page that accepts one.

Only an owner opens this area. An invitation's link is shown once to the inviter
(carried across the redirect like a new API key, dashboard/shown_once.py) until
``services.admins.invite`` mails it. The accepting page needs no session:
its token is the invitation's, its form has its own CSRF cookie as the sign-in form.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal import _links
from billportal.core import i18n
from billportal.core.bounds import MAX_SERIAL_ID
from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.dashboard import shown_once
from billportal.dashboard.auth import (
    BUSY,
    EXPIRED_FORM,
    FORM_COOKIE_SECONDS,
    SIGN_IN_PER_ACCOUNT,
    UNREADABLE_FORM,
    AdminVisit,
    Sudo,
    admin,
)
from billportal.dashboard.forms import MAX_BODY, email_problem, normalize_email
from billportal.dashboard.views import Dashboard
from billportal.services import admins as roles
from billportal.services import passwords
from billportal.services.audit import Actor
from billportal.storage.records import Company, Invitation
from billportal.web import sessions
from billportal.web.context import client_ip
from billportal.web.errors import error_page
from billportal.web.forms import Form, UnreadableForm, read_form
from billportal.web.templates import NO_STORE, render

ADMINS: Final = "/settings/admins"
INVITATION: Final = "/invitation"
_NOTICES: Final = {
    "role_changed": N_("The role is changed. It applies from the admin's next click."),
    "role_unchanged": N_("Nothing changed."),
    "removed": N_("The admin is removed: they no longer administer this company."),
}
_INVITATION_PROBLEMS: Final = {
    "unknown": (404, N_("This invitation link is not valid. Check that it was copied whole, or ask for a new one.")),
    "used": (410, N_("This invitation has been used already. Sign in, or ask an owner for a new invitation.")),
    "expired": (410, N_("This invitation has expired. Ask an owner of the company for a new one.")),
}


def _admin_id(request: Request) -> int:
    """The admin the path names (0, which names none, past the column's range)."""
    value: int = request.path_params["admin_id"]
    return value if 0 < value <= MAX_SERIAL_ID else 0


def _yourself(visit: AdminVisit, admin_id: int) -> Refused | None:
    if admin_id == visit.admin.id:
        return Refused(
            "yourself", i18n.gettext("You cannot change your own role or remove yourself: another owner can.")
        )
    return None


class AdminPages(Dashboard):
    """The Admins page (owners only) and the invitation's accepting page (anyone holding its link)."""

    # -- Security > Admins --------------------------------------------------------------------------

    @admin(area="admins")
    async def admins(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        """The admins, their roles and pending invitations; after an invitation (``?invited={id}``), its link once."""
        invited_raw = request.query_params.get("invited", "")
        link = ""
        shown_already = False
        if invited_raw.isascii() and invited_raw.isdigit() and len(invited_raw) < 10:
            token = shown_once.take(
                request,
                self.context.settings,
                self.context.store.master_keys,
                session_hash=visit.session.id_hash,
                company_id=company.id,
                key_id=int(invited_raw),
                now=self.context.clock(),
                kind="invitation",
            )
            link = self._link(token) if token else ""
            shown_already = token is None
        mailed = request.query_params.get("mailed") == "1"
        response = await self._admins_page(
            request, visit, company, link=link, shown_already=shown_already, mailed=mailed
        )
        shown_once.forget(request, response, self.context.settings)
        return response

    def _link(self, token: str) -> str:
        origin = _links.portal_url("dashboard", self.context.settings.base_url)
        return f"{origin}{INVITATION}?{urlencode({'token': token})}"

    async def _admins_page(
        self,
        request: Request,
        visit: AdminVisit,
        company: Company,
        *,
        status_code: int = 200,
        link: str = "",
        shown_already: bool = False,
        mailed: bool = False,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        problem: str = "",
    ) -> Response:
        store = self.context.store
        members = await roles.members_of(store, company.id)
        owners = sum(member.role == "owner" for member in members)
        notice = i18n.gettext(_NOTICES.get(request.query_params.get("notice", ""), ""))
        return self._page(
            request,
            visit,
            "dashboard/admins.html",
            status_code=status_code,
            title=i18n.gettext("Admins"),
            section="admins",
            members=members,
            owners=owners,
            invitations=await roles.pending(store, company.id, self.context.clock()),
            roles=roles.ROLES,
            role_hints=roles.ROLE_HINTS,
            link=link,
            mailed=mailed,
            shown_already=shown_already,
            values={"email": "", "role": "developer", **(values or {})},
            errors=errors or {},
            problem=problem,
            admins_notice=notice,
            invitation_hours=roles.INVITATION_SECONDS // 3600,
        )

    @admin(form=True, sudo=Sudo(N_("Inviting an admin"), N_("Confirm and invite")), area="admins")
    async def invite(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """A single-use invitation to the email, in the role; its link shown once on the page this redirects to."""
        values = {"email": normalize_email(form.text("email", 600)), "role": form.text("role", 20)}
        errors = {}
        problem = email_problem(values["email"])
        if problem:
            errors["email"] = problem
        problem = roles.role_problem(values["role"])
        if problem:
            errors["role"] = problem
        if not errors:
            now = self.context.clock()
            try:
                made = await roles.invite(
                    self.context.store,
                    company,
                    values["email"],
                    role=values["role"],
                    actor=visit.actor,
                    now=now,
                    link=self._link,
                )
            except Refused as refused:
                errors[refused.field or "email"] = refused.message
            else:
                return self._invited(visit, company, made, now)
        values["email"] = values["email"][:254]
        return await self._admins_page(request, visit, company, status_code=400, values=values, errors=errors)

    def _invited(self, visit: AdminVisit, company: Company, made: roles.NewInvitation, now: int) -> Response:
        invitation = made.invitation
        # Post/redirect/get: the link in no URL of the dashboard, shown once (also when it was emailed: mail
        # can be slow or land in spam), and a reload makes no second one.
        mailed = "&mailed=1" if made.mailed else ""
        response = RedirectResponse(
            f"{ADMINS}?invited={invitation.id}{mailed}", status_code=303, headers=dict(NO_STORE)
        )
        shown_once.carry(
            response,
            self.context.settings,
            self.context.store.master_keys,
            secret=made.token,
            session_hash=visit.session.id_hash,
            company_id=company.id,
            key_id=invitation.id,
            now=now,
            kind="invitation",
        )
        return response

    @admin(form=True, max_fields=5, area="admins")
    async def set_role(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        role = form.text("role", 20)
        yourself = _yourself(visit, _admin_id(request))
        if yourself is not None:
            return await self._refused(request, visit, company, yourself)
        try:
            changed = await roles.change_role(
                self.context.store, company, _admin_id(request), role=role, actor=visit.actor, now=self.context.clock()
            )
        except Refused as refused:
            return await self._refused(request, visit, company, refused)
        return self._done("role_changed" if changed else "role_unchanged", ADMINS)

    @admin(form=True, max_fields=5, area="admins")
    async def remove(self, request: Request, visit: AdminVisit, company: Company, _form: Form) -> Response:
        yourself = _yourself(visit, _admin_id(request))
        if yourself is not None:
            return await self._refused(request, visit, company, yourself)
        try:
            await roles.remove(self.context.store, company, _admin_id(request), visit.actor, self.context.clock())
        except Refused as refused:
            return await self._refused(request, visit, company, refused)
        return self._done("removed", ADMINS)

    async def _refused(self, request: Request, visit: AdminVisit, company: Company, refused: Refused) -> Response:
        status = {"not_found": 404, "last_owner": 409, "yourself": 409}.get(refused.code, 400)
        return await self._admins_page(request, visit, company, status_code=status, problem=refused.message)

    # -- the invitation's page (no session) -----------------------------------------------------------

    async def invitation_page(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        invitation, problem = await roles.invitation_for(self.context.store, token, self.context.clock())
        if invitation is None:
            return _problem(problem)
        return await self._invitation_form(invitation, token)

    async def _invitation_form(
        self, invitation: Invitation, token: str, *, status_code: int = 200, errors: dict[str, str] | None = None
    ) -> Response:
        existing = await self.context.store.admins.admin_by_email(invitation.email) is not None
        csrf = sessions.new_csrf_token()
        response = render(
            "dashboard/invitation.html",
            status_code=status_code,
            title=i18n.gettext("Accept the invitation"),
            company=None,
            notice="",
            csrf_token=csrf,
            invitation=invitation,
            role=roles.role_label(invitation.role),
            token=token,
            existing=existing,
            errors=errors or {},
            min_length=passwords.MIN_LENGTH,
        )
        settings = self.context.settings
        response.headers.append(
            "set-cookie",
            sessions.cookie_header(
                self.auth.form_cookie, csrf, secure=settings.cookie_secure, max_age=FORM_COOKIE_SECONDS
            ),
        )
        return response

    async def accept(self, request: Request) -> Response:
        """Accept: a new admin chooses a password; an existing one gives theirs. One membership, whatever resends it."""
        try:
            form = await read_form(request, max_bytes=MAX_BODY, max_fields=5)
        except UnreadableForm as refused:
            return error_page(refused.status, UNREADABLE_FORM if refused.status == 400 else refused.message)
        expected = request.cookies.get(self.auth.form_cookie, "")
        if not expected or not sessions.same_token(expected, form.get("csrf_token", "")):
            return error_page(403, EXPIRED_FORM)
        token = form.text("token", 200)
        store = self.context.store
        invitation, problem = await roles.invitation_for(store, token, self.context.clock())
        if invitation is None:
            return _problem(problem)
        existing = await store.admins.admin_by_email(invitation.email)
        password = form.text("password", passwords.MAX_LENGTH + 1)
        if existing is not None:
            status, mistake = 403, await self._check_password(invitation.email, existing.password_hash, password)
            password_hash = None
        else:
            status, mistake, password_hash = await self._new_password(password, form.get("confirm_password", ""))
        if mistake:
            return await self._invitation_form(invitation, token, status_code=status, errors={"password": mistake})
        actor = Actor(invitation.email, None, client_ip(request), request.headers.get("user-agent", "")[:300])
        try:
            await roles.accept(
                store,
                invitation,
                actor,
                self.context.clock(),
                admin_id=existing.id if existing is not None else None,
                password_hash=password_hash,
            )
        except Refused as refused:
            return error_page(410 if refused.code == "invitation_used" else 409, refused.message)
        response = RedirectResponse("/sign-in?notice=invitation_accepted", status_code=303, headers=dict(NO_STORE))
        secure = self.context.settings.cookie_secure
        response.headers.append("set-cookie", sessions.clear_cookie_header(self.auth.form_cookie, secure=secure))
        return response

    async def _new_password(self, password: str, again: str) -> tuple[int, str, str | None]:
        """(status, what is wrong, "") or (200, "", the password's argon2id hash)."""
        mistake = passwords.password_problem(password)
        if not mistake and password != again:
            mistake = i18n.gettext("The two passwords differ.")
        if mistake:
            return 400, mistake, None
        if self.auth.password_checks.locked():
            return 429, i18n.gettext(BUSY), None
        async with self.auth.password_checks:
            password_hash: str = await run_in_threadpool(passwords.hash_password, password)
        return 200, "", password_hash

    async def _check_password(self, email: str, password_hash: str, password: str) -> str:
        """ "" when the existing admin's password is right; counted like a sign-in against their account."""
        limiter = self.auth.limiter
        wait = await limiter.retry_after(SIGN_IN_PER_ACCOUNT, email)
        if wait:
            return i18n.gettext("Too many wrong passwords. Try again in %(wait)s seconds.") % {"wait": wait}
        if self.auth.password_checks.locked():
            return i18n.gettext(BUSY)
        async with self.auth.password_checks:
            wait = await limiter.attempt(SIGN_IN_PER_ACCOUNT, email)
            if wait:
                return i18n.gettext("Too many wrong passwords. Try again in %(wait)s seconds.") % {"wait": wait}
            right: bool = await run_in_threadpool(passwords.verify_password, password_hash, password)
        if right:
            await limiter.succeeded(SIGN_IN_PER_ACCOUNT, email)
            return ""
        await limiter.failed(SIGN_IN_PER_ACCOUNT, email, counted=True)
        return i18n.gettext("That password is not right.")


def _problem(problem: str) -> Response:
    status, message = _INVITATION_PROBLEMS.get(problem, _INVITATION_PROBLEMS["unknown"])
    return error_page(status, message)
