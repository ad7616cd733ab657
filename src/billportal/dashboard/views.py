"""Settings > Developers > Single Sign-On and API keys, and the audit trail: the pages of a company's admins."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from billportal import _links
from billportal.core import i18n
from billportal.core.countries import countries as country_list
from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.dashboard import shown_once
from billportal.dashboard.auth import AdminAuth, AdminVisit, Sudo, admin
from billportal.dashboard.forms import (
    REASON_CODES,
    LogFilters,
    customer_id_field,
    parse_policy,
    policy_values,
)
from billportal.dashboard.sign_in_log import SCAN_WINDOW, log_csv, log_page
from billportal.services import api_keys, audit
from billportal.services import companies as profile
from billportal.services import sso as management
from billportal.services.sso import GRACE_LABELS, GRACE_PERIODS, PolicySettings
from billportal.sso.explain import Explanation, explain_now, token_from
from billportal.sso.pages import PAGE_NAMES, SEED_PAGE_IDS
from billportal.sso.reasons import Reason, explain
from billportal.sso.tokens import MAX_TOKEN_BYTES
from billportal.storage.records import Company, NewApiKey, SsoKeyInfo
from billportal.web.context import Context
from billportal.web.errors import error_page
from billportal.web.forms import Form
from billportal.web.templates import NO_STORE, render

SSO: Final = "/settings/developers/sso"
API_KEYS: Final = "/settings/developers/api-keys"
PAYMENTS: Final = "/settings/payments"
COMPANY: Final = "/settings/company"
PAYMENT_SWITCHES: Final = ("test_mode", "allow_partial", "allow_saved_methods", "allow_autopay")
GATEWAY_NAMES: Final = {
    "none": N_("None (customers pay offline)"),
    "test": N_("Built-in test gateway"),
    "stripe": N_("Stripe"),
}
LOG_PAGE: Final = 50
AUDIT_PAGE: Final = 50
TEST_LINK_SECONDS: Final = 300
DEFAULT_TEST_ISSUER: Final = "billportal dashboard"

_NOTICES: Final = {
    "company_saved": N_("The company settings are saved. Customers see them in the portal and on every document."),
    "company_unchanged": N_("Nothing changed."),
    "logo_saved": N_("The logo is saved. Customers see it in the portal's header."),
    "logo_removed": N_("The logo is removed."),
    "payments_saved": N_("The payment settings are saved."),
    "payment_secrets_saved": N_("The secrets are sealed and stored. They are never shown again."),
    "rotated": N_(
        "The new key is active. Reveal it and deploy it to your backend before the old key's grace period ends."
    ),
    "revoked": N_("The key is revoked: links signed with it are refused from now on."),
    "enabled": N_("Single sign-on is on."),
    "disabled": N_("Single sign-on is off: every sign-in link is refused."),
    "policy_saved": N_("The sign-in policy is saved."),
    "policy_unchanged": N_("Nothing changed."),
    "cut_off": N_("Every link issued before now is refused from now on."),
    "cut_off_and_signed_out": N_(
        "Every link issued before now is refused from now on, and every customer is signed out."
    ),
    "signed_out_everyone": N_(
        "Every customer is signed out. Links they still hold sign them in again until they expire."
    ),
    "cutoff_removed": N_("The cutoff is removed."),
    "password_changed": N_("Your password has been changed. Your other sessions have been signed out."),
    "api_key_revoked": N_("The API key is revoked: requests made with it are refused from now on."),
}
NO_API_KEY: Final = N_("There is no such active API key. It may have been revoked already.")


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A key as the key list shows it."""

    info: SsoKeyInfo
    state: str  # active, retiring, retired (grace over), revoked

    @property
    def revocable(self) -> bool:
        return self.state in ("retiring", "retired")


def key_rows(keys: list[SsoKeyInfo], now: int) -> list[KeyRow]:
    rows = []
    for info in keys:
        state = info.state
        if state == "retiring" and (info.retiring_until is None or info.retiring_until <= now):
            state = "retired"
        rows.append(KeyRow(info, state))
    return rows


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A dangerous action's confirmation page (marked, translated where shown), and the fields it sends again."""

    question: str
    consequences: tuple[str, ...]
    button: str
    fields: dict[str, str]
    cancel: str = SSO


TURN_SSO_OFF: Final = Confirmation(
    N_("Turn single sign-on off?"),
    (
        N_(
            "Every sign-in link is refused from now on (reason sso_disabled): no customer can get into the portal"
            " from your app until you turn it back on."
        ),
        N_("Customers already signed in stay signed in; the keys and the policy are kept."),
    ),
    N_("Turn single sign-on off"),
    {"enabled": "off"},
)
ROTATE_WITHOUT_GRACE: Final = Confirmation(
    N_("Rotate with no grace period?"),
    (
        N_(
            "The current key, and any key still retiring, stops signing customers in at once: every link your"
            " backend makes with it is refused until it uses the new key."
        ),
        N_("Choose a grace period instead if your backend cannot switch keys this minute."),
    ),
    N_("Rotate now, with no grace"),
    {"grace": "none"},
)


class Dashboard:
    """The pages of Settings > Developers > Single Sign-On and the audit trail."""

    notices: Mapping[str, str] = _NOTICES  # what ?notice= says on a page (a subclass names its own)

    def __init__(self, context: Context, auth: AdminAuth) -> None:
        self.context = context
        self.auth = auth  # what @admin checks each view's declared needs with

    # -- plumbing ---------------------------------------------------------------------------

    def _page(
        self, request: Request, visit: AdminVisit, template: str, *, status_code: int = 200, **context: Any
    ) -> Response:
        return render(
            template,
            status_code=status_code,
            admin=visit.admin,
            company=visit.company,
            companies=visit.companies,
            csrf_token=visit.session.csrf_token,
            notice=i18n.gettext(self.notices.get(request.query_params.get("notice", ""), "")),
            **context,
        )

    def _confirm(self, request: Request, visit: AdminVisit, confirmation: Confirmation) -> Response:
        """Ask before a dangerous action: the same form again, with ``confirm=yes`` (no JavaScript)."""
        return self._page(
            request,
            visit,
            "dashboard/confirm.html",
            title=i18n.gettext(confirmation.question),
            section="keys",
            confirmation=confirmation,
            action=request.url.path,
        )

    def _done(self, notice: str, path: str = SSO) -> Response:
        return RedirectResponse(f"{path}?notice={notice}", status_code=303, headers=dict(NO_STORE))

    @admin()
    async def home(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        """The company at a glance: what it has set up, and what it still has to (the checklist)."""
        keys = await management.sso_keys_of(self.context.store, company.id)
        settings = await self.context.payments.settings(company.id)
        steps = profile.checklist(
            company,
            sso_key_used=any(key.last_used_at is not None for key in keys),
            takes_cards=settings.gateway != "none",
        )
        return self._page(
            request,
            visit,
            "dashboard/home.html",
            title=i18n.gettext("Home"),
            section="home",
            steps=steps,
            remaining=sum(not step.done for step in steps),
            portal_url=_links.portal_url(company.username, self.context.settings.base_url),
        )

    # -- Settings > Company -------------------------------------------------------------------------

    @admin(area="company")
    async def company(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        values = profile.values_of(company)
        return await self._company_page(request, visit, company, values, {})

    async def _company_page(
        self,
        request: Request,
        visit: AdminVisit,
        company: Company,
        values: dict[str, str],
        errors: dict[str, str],
        *,
        status_code: int = 200,
    ) -> Response:
        # The preview is inline (a data: URL), so that the logo has no address on the dashboard.
        found = await profile.logo_of(self.context.store, company)
        logo_url = f"data:{found[0]};base64,{base64.b64encode(found[1]).decode('ascii')}" if found else ""
        return self._page(
            request,
            visit,
            "dashboard/company.html",
            status_code=status_code,
            title=i18n.gettext("Company"),
            section="company",
            values=values,
            errors=errors,
            labels={name: i18n.gettext(label) for name, label in profile.LABELS.items()},
            limits=profile.PROFILE_FIELDS,
            countries=country_list(),
            max_logo_kb=profile.MAX_LOGO_BYTES // 1024,
            logo_box=profile.LOGO_BOX,
            logo_url=logo_url,
        )

    @admin(form=True, max_fields=len(profile.PROFILE_FIELDS) + 2, area="company")
    async def save_company(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """The company's settings, each checked by services/companies.py (every wrong field said at once)."""
        fields = profile.PROFILE_FIELDS
        typed = {name: form.text(name, limit * 2) for name, (limit, _) in fields.items() if name in form}
        kept, wrong = profile.problems(typed, company)
        if wrong:
            values = {**profile.values_of(company), **typed}
            errors = {name: problem.message for name, problem in wrong.items()}
            return await self._company_page(request, visit, company, values, errors, status_code=400)
        before = company
        await profile.update_profile(self.context.store, company, kept, visit.actor, self.context.clock())
        unchanged = all(getattr(before, name) == value for name, value in kept.items())
        return self._done("company_unchanged" if unchanged else "company_saved", COMPANY)

    @admin(form=True, upload=True, max_fields=4, area="company")
    async def save_logo(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """A PNG or JPEG, re-encoded here (never kept or served as uploaded); or, with ``remove=yes``, no logo."""
        if form.get("remove") == "yes":
            await profile.set_logo(self.context.store, company, None, visit.actor, self.context.clock())
            return self._done("logo_removed", COMPANY)
        try:
            logo = profile.process_logo(form.files.get("logo", b""))
        except Refused as refused:
            values = profile.values_of(company)
            return await self._company_page(request, visit, company, values, {"logo": refused.message}, status_code=400)
        await profile.set_logo(self.context.store, company, logo, visit.actor, self.context.clock())
        return self._done("logo_saved", COMPANY)

    # -- Single Sign-On: status and keys ------------------------------------------------------

    @admin(area="developer")
    async def sso(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        keys = key_rows(await management.sso_keys_of(self.context.store, company.id), self.context.clock())
        return self._page(
            request,
            visit,
            "dashboard/sso.html",
            title=i18n.gettext("Single Sign-On"),
            section="keys",
            keys=keys,
            weak_active=any(row.state == "active" and row.info.weak for row in keys),
            grace_labels=GRACE_LABELS,
            portal_url=_links.portal_url(company.username, self.context.settings.base_url),
        )

    @admin(form=True, area="developer")
    async def set_enabled(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        enabled = form.get("enabled") == "on"
        if not enabled and company.sso_enabled and form.get("confirm") != "yes":
            return self._confirm(request, visit, TURN_SSO_OFF)
        await management.set_enabled(self.context.store, company, enabled, visit.actor, self.context.clock())
        return self._done("enabled" if enabled else "disabled")

    @admin(form=True, area="developer")
    async def rotate(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        grace = form.get("grace", "")
        if grace not in GRACE_PERIODS:
            return error_page(400, N_("Choose a grace period from the list."))
        if grace == "none" and company.sso_keys and form.get("confirm") != "yes":
            return self._confirm(request, visit, ROTATE_WITHOUT_GRACE)
        await management.rotate(self.context.store, company, grace, visit.actor, self.context.clock())
        return self._done("rotated")

    @admin(form=True, area="developer")
    async def revoke_key(self, request: Request, visit: AdminVisit, company: Company, _form: Form) -> Response:
        kid = request.path_params["kid"]
        if not await management.revoke(self.context.store, company, kid, visit.actor, self.context.clock()):
            return error_page(
                409,
                N_("Only a retiring key can be revoked. To replace the active key, rotate it with no grace period."),
            )
        return self._done("revoked")

    @admin(form=True, sudo=Sudo(N_("Revealing the SSO key"), N_("Confirm and reveal")), area="developer")
    async def reveal(self, request: Request, visit: AdminVisit, company: Company, _form: Form) -> Response:
        """The active key, after the admin's password (sudo mode: asked again after a few minutes)."""
        kid = request.path_params["kid"]
        secret = await management.reveal(self.context.store, company, kid, visit.actor, self.context.clock())
        if secret is None:
            return error_page(404, N_("Only the active key can be revealed."))
        return self._page(
            request,
            visit,
            "dashboard/reveal.html",
            title=i18n.gettext("SSO key"),
            section="keys",
            kid=kid,
            secret=secret,
        )

    # -- policy ---------------------------------------------------------------------------------

    @admin(area="developer")
    async def policy(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        return self._policy_page(request, visit, policy_values(PolicySettings.of(company)), {})

    def _policy_page(
        self,
        request: Request,
        visit: AdminVisit,
        values: dict[str, str],
        errors: dict[str, str],
        status_code: int = 200,
    ) -> Response:
        return self._page(
            request,
            visit,
            "dashboard/policy.html",
            status_code=status_code,
            title=i18n.gettext("Sign-in policy"),
            section="policy",
            values=values,
            errors=errors,
        )

    @admin(form=True, area="developer")
    async def save_policy(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        parsed = parse_policy(form)
        if parsed.settings is None:
            return self._policy_page(request, visit, parsed.values, parsed.errors, status_code=400)
        changed = await management.update_policy(
            self.context.store, company, parsed.settings, visit.actor, self.context.clock()
        )
        return self._done("policy_saved" if changed else "policy_unchanged", f"{SSO}/policy")

    # -- try it -----------------------------------------------------------------------------------

    @admin(area="developer")
    async def try_it(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        return await self._try_page(request, visit, company)

    async def _try_page(
        self,
        request: Request,
        visit: AdminVisit,
        company: Company,
        *,
        status_code: int = 200,
        link: str = "",
        link_expires: int = 0,
        explanation: Explanation | None = None,
        token: str = "",
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> Response:
        issuers = sorted(company.policy.allowed_issuers)
        defaults = {"customer": "", "issuer": issuers[0] if issuers else DEFAULT_TEST_ISSUER, "redirect_to": ""}
        return self._page(
            request,
            visit,
            "dashboard/try.html",
            status_code=status_code,
            title=i18n.gettext("Try it"),
            section="try",
            customers=await self.context.billing.customers(company.id, limit=200),
            page_names=PAGE_NAMES,
            link=link,
            link_expires=link_expires,
            explanation=explanation,
            token=token,
            values={**defaults, **(values or {})},
            errors=errors or {},
            test_seconds=TEST_LINK_SECONDS,
        )

    @admin(
        form=True,
        sudo=Sudo(N_("Making a sign-in link for a customer"), N_("Confirm and make the link")),
        area="developer",
    )
    async def try_link(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """A link for one customer, valid 5 minutes, made by the code behind ``billportal sso-url``."""
        store = self.context.store
        values = {
            "customer": form.text("customer", 20).strip(),
            "issuer": form.text("issuer", 200).strip() or DEFAULT_TEST_ISSUER,
            "redirect_to": form.get("redirect_to", "") if form.get("redirect_to") in SEED_PAGE_IDS else "",
        }
        customer_id = customer_id_field(values["customer"])
        key = management.active_key(company)
        error = ""
        if customer_id is None:
            error = i18n.gettext("Enter a customer id, a positive whole number.")
        elif not await store.customer_exists(company.id, customer_id):
            error = i18n.gettext("%(company)s has no customer %(id)s.") % {"company": company.name, "id": customer_id}
        elif key is None:
            error = i18n.gettext("There is no active key: rotate to create one.")
        if error or customer_id is None or key is None:
            return await self._try_page(
                request, visit, company, status_code=400, values=values, errors={"customer": error}
            )
        policy = company.policy
        ttl = min(TEST_LINK_SECONDS, policy.max_lifetime or TEST_LINK_SECONDS)
        link = _links.sign_in_url(
            key.secret.decode("utf-8"),
            company.username,
            customer_id,
            issuer=values["issuer"],
            ttl=ttl,
            redirect_to=values["redirect_to"] or None,
            single_use=policy.require_jti,
            base_url=self.context.settings.base_url,
            kid=key.kid,
        )
        now = self.context.clock()
        await audit.record(
            store, visit.actor, "sso.test_link", now, company_ids=[company.id], detail=f"customer {customer_id}"
        )
        explanation = await explain_now(token_from(link), company, now, store.customer_exists, store.jti_used)
        return await self._try_page(
            request, visit, company, link=link, link_expires=now + ttl, explanation=explanation, values=values
        )

    @admin(form=True, area="developer")
    async def try_explain(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """What ``billportal sso-explain`` says of a pasted token or link."""
        pasted = form.text("token", MAX_TOKEN_BYTES * 2)
        if not pasted.strip():
            return await self._try_page(
                request,
                visit,
                company,
                status_code=400,
                errors={"token": i18n.gettext("Paste a token or a sign-in link.")},
            )
        store = self.context.store
        explanation = await explain_now(
            token_from(pasted), company, self.context.clock(), store.customer_exists, store.jti_used
        )
        return await self._try_page(request, visit, company, explanation=explanation, token=pasted)

    # -- sign-in log ------------------------------------------------------------------------------

    @admin(area="developer")
    async def log(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        filters = LogFilters.parse(dict(request.query_params))
        before_raw = request.query_params.get("before", "")
        before = int(before_raw) if before_raw.isascii() and before_raw.isdigit() and len(before_raw) < 19 else None
        page = await log_page(self.context.store, company.id, filters, before, LOG_PAGE) if not filters.error else None
        older = ""
        if page is not None and page.older is not None:
            older = "?" + urlencode({**filters.query(), "before": page.older})
        return self._page(
            request,
            visit,
            "dashboard/log.html",
            status_code=400 if filters.error else 200,
            title=i18n.gettext("Sign-in log"),
            section="log",
            events=page.events if page else [],
            contacts=page.contacts if page else {},
            window_searched=page.window_searched if page else False,
            scan_window=SCAN_WINDOW,
            filters=filters,
            reasons=REASON_CODES,
            explain=lambda code: explain(Reason(code))[0] if code in REASON_CODES else "",
            older=older,
            newest="?" + urlencode(filters.query()) if before is not None else "",
            csv_url=f"{SSO}/log.csv" + ("?" + urlencode(filters.query()) if filters.query() else ""),
        )

    @admin(area="developer")
    async def log_csv(self, request: Request, _visit: AdminVisit, company: Company) -> Response:
        filters = LogFilters.parse(dict(request.query_params))
        if filters.error:
            return error_page(400, filters.error)
        day = datetime.fromtimestamp(self.context.clock(), UTC).strftime("%Y%m%d")
        headers = dict(NO_STORE)
        headers["Content-Disposition"] = f'attachment; filename="sign-in-log-{company.username}-{day}.csv"'
        return StreamingResponse(
            log_csv(self.context.store, company.id, filters),
            media_type="text/csv; charset=utf-8",
            headers=headers,
        )

    # -- revoke -------------------------------------------------------------------------------------

    @admin(area="developer")
    async def revoke_page(self, request: Request, visit: AdminVisit, _company: Company) -> Response:
        return self._revoke_page(request, visit)

    def _revoke_page(
        self, request: Request, visit: AdminVisit, *, status_code: int = 200, customer: str = "", message: str = ""
    ) -> Response:
        return self._page(
            request,
            visit,
            "dashboard/revoke.html",
            status_code=status_code,
            title=i18n.gettext("Revoke"),
            section="revoke",
            customer=customer,
            message=message,
            error=status_code >= 400,
        )

    @admin(form=True, area="developer")
    async def sign_out_customer(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        raw = form.text("customer", 20).strip()
        customer_id = customer_id_field(raw)
        store = self.context.store
        if customer_id is None:
            message = i18n.gettext("Enter a customer id, a positive whole number.")
            return self._revoke_page(request, visit, status_code=400, customer=raw, message=message)
        if not await store.customer_exists(company.id, customer_id):
            message = i18n.gettext("%(company)s has no customer %(id)s.") % {"company": company.name, "id": customer_id}
            return self._revoke_page(request, visit, status_code=404, customer=raw, message=message)
        ended = await management.sign_out_customer(store, company, customer_id, visit.actor, self.context.clock())
        message = i18n.ngettext(
            "Customer %(id)s is signed out everywhere (%(num)s session ended). A link they still hold signs them"
            " in again until it expires: to stop that too, reject every link issued before now.",
            "Customer %(id)s is signed out everywhere (%(num)s sessions ended). A link they still hold signs them"
            " in again until it expires: to stop that too, reject every link issued before now.",
            ended,
        ) % {"id": customer_id, "num": ended}
        return self._revoke_page(request, visit, message=message)

    @admin(form=True, area="developer")
    async def cut_off(self, _request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        end_sessions = form.get("sessions") == "end"
        await management.cut_off_links(
            self.context.store, company, visit.actor, self.context.clock(), end_sessions=end_sessions
        )
        return self._done("cut_off_and_signed_out" if end_sessions else "cut_off", f"{SSO}/revoke")

    @admin(form=True, area="developer")
    async def sign_out_everyone(self, _request: Request, visit: AdminVisit, company: Company, _form: Form) -> Response:
        await management.sign_out_everyone(self.context.store, company, visit.actor, self.context.clock())
        return self._done("signed_out_everyone", f"{SSO}/revoke")

    @admin(form=True, area="developer")
    async def remove_cutoff(self, _request: Request, visit: AdminVisit, company: Company, _form: Form) -> Response:
        await management.remove_cutoff(self.context.store, company, visit.actor, self.context.clock())
        return self._done("cutoff_removed", f"{SSO}/revoke")

    # -- API keys -----------------------------------------------------------------------------------

    @admin(area="developer")
    async def api_keys(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        """The keys; after a key was made (``?created={id}``), that key, once, or a word that it was shown."""
        created_raw = request.query_params.get("created", "")
        created_id = api_keys.key_reference(created_raw) if created_raw else None
        if not isinstance(created_id, int):
            response = await self._api_keys_page(request, visit, company)
        else:
            keys = await api_keys.keys_of(self.context.store, company.id)
            info = next((k for k in keys if k.id == created_id), None)
            secret = None
            if info is not None:
                secret = shown_once.take(
                    request,
                    self.context.settings,
                    self.context.store.master_keys,
                    session_hash=visit.session.id_hash,
                    company_id=company.id,
                    key_id=info.id,
                    now=self.context.clock(),
                )
            response = await self._api_keys_page(
                request,
                visit,
                company,
                created=NewApiKey(secret, info) if info is not None and secret is not None else None,
                shown_already=info is not None and secret is None,
            )
        shown_once.forget(request, response, self.context.settings)
        return response

    async def _api_keys_page(
        self,
        request: Request,
        visit: AdminVisit,
        company: Company,
        *,
        status_code: int = 200,
        name: str = "",
        scopes: tuple[str, ...] | None = None,
        errors: dict[str, str] | None = None,
        created: NewApiKey | None = None,
        shown_already: bool = False,
    ) -> Response:
        return self._page(
            request,
            visit,
            "dashboard/api_keys.html",
            status_code=status_code,
            title=i18n.gettext("API keys"),
            section="api_keys",
            keys=await api_keys.keys_of(self.context.store, company.id),
            key_name=name,  # not ``name``: render() takes the template's name by that keyword
            scopes=api_keys.SCOPES,
            chosen_scopes=api_keys.DEFAULT_SCOPES if scopes is None else scopes,
            errors=errors or {},
            created=created,
            shown_already=shown_already,
            max_name_length=api_keys.MAX_NAME_LENGTH,
        )

    @admin(form=True, sudo=Sudo(N_("Creating an API key"), N_("Confirm and create the key")), area="developer")
    async def create_api_key(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """A new key with the scopes ticked, shown once on the page this redirects to; it is stored hashed."""
        name = form.get("name", "").strip()
        ticked = tuple(scope for scope in api_keys.SCOPES if form.get(f"scope_{scope}") == "on")
        scopes = api_keys.scopes_of(ticked)
        errors = {}
        problem = api_keys.name_problem(name)
        if problem:
            errors["name"] = problem
        if scopes is None:
            errors["scopes"] = i18n.gettext("Choose at least one thing the key may do.")
        if errors or scopes is None:
            return await self._api_keys_page(
                request,
                visit,
                company,
                status_code=400,
                name=name[: api_keys.MAX_NAME_LENGTH * 2],
                scopes=ticked,
                errors=errors,
            )
        now = self.context.clock()
        created = await api_keys.create(self.context.store, company, name, visit.actor, now, scopes=scopes)
        # Post/redirect/get: a reload of the page that shows the key makes no second key.
        response = RedirectResponse(f"{API_KEYS}?created={created.info.id}", status_code=303, headers=dict(NO_STORE))
        shown_once.carry(
            response,
            self.context.settings,
            self.context.store.master_keys,
            secret=created.key,
            session_hash=visit.session.id_hash,
            company_id=company.id,
            key_id=created.info.id,
            now=now,
        )
        return response

    @admin(form=True, area="developer")
    async def revoke_api_key(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """Asks to confirm, then (with ``confirm=yes``) revokes; another company's key is one that does not exist."""
        store = self.context.store
        reference = api_keys.key_reference(request.path_params["key_id"])
        key = api_keys.live_key(await api_keys.keys_of(store, company.id), reference)
        if key is None:
            return error_page(404, NO_API_KEY)
        if form.get("confirm") != "yes":
            return self._page(
                request,
                visit,
                "dashboard/api_key_revoke.html",
                title=i18n.gettext("Revoke API key"),
                section="api_keys",
                key=key,
            )
        if await api_keys.revoke(store, company, key.id, visit.actor, self.context.clock()) is None:
            return error_page(404, NO_API_KEY)  # revoked meanwhile, in another tab or by the CLI
        return self._done("api_key_revoked", API_KEYS)

    # -- payments ------------------------------------------------------------------------------------

    @admin(area="company")
    async def payments(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        """How customers pay online: the gateway (its secrets never shown), test mode, what customers may do."""
        return await self._payments_page(request, visit, company, {})

    async def _payments_page(
        self, request: Request, visit: AdminVisit, company: Company, errors: dict[str, str], status_code: int = 200
    ) -> Response:
        settings = await self.context.payments.settings(company.id)
        return self._page(
            request,
            visit,
            "dashboard/payments.html",
            status_code=status_code,
            title=i18n.gettext("Payments"),
            section="payments",
            settings=settings,
            gateways={code: i18n.gettext(name) for code, name in GATEWAY_NAMES.items()},
            gateway_name=i18n.gettext(GATEWAY_NAMES.get(settings.gateway, settings.gateway)),
            errors=errors,
            base_domain=self.context.settings.base_domain,
        )

    @admin(form=True, area="company")
    async def save_payments(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """The gateway and what customers may do (the secrets have a form of their own, behind sudo)."""
        values: dict[str, Any] = {name: form.get(name) == "on" for name in PAYMENT_SWITCHES}
        texts = ("gateway", "autopay_retry_days", "publishable_key", "api_base")
        values.update({name: form.text(name, 300).strip() for name in texts if name in form})
        if not values.get("gateway"):
            values.pop("gateway", None)  # no choice sent: the gateway stays as it is
        try:
            await self.context.payments.configure(company, values, visit.actor, now=self.context.clock())
        except Refused as refused:
            return await self._payments_page(
                request, visit, company, {refused.field or "gateway": refused.message}, 400
            )
        return self._done("payments_saved", PAYMENTS)

    @admin(
        form=True,
        sudo=Sudo(N_("Changing the payment gateway's secret keys"), N_("Confirm"), ("secret_key", "webhook_secret")),
        area="company",
    )
    async def save_payment_secrets(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """The gateway's secret key and webhook signing secret: sealed at once, never shown again."""
        secret_key = form.text("secret_key", 500).strip() or None
        webhook_secret = form.text("webhook_secret", 500).strip() or None
        if secret_key is None and webhook_secret is None:  # none typed, or the password was asked for first
            return await self._payments_page(
                request, visit, company, {"secret_key": i18n.gettext("Enter a secret to store.")}, 400
            )
        try:
            await self.context.payments.configure(
                company, {}, visit.actor, now=self.context.clock(), secret_key=secret_key, webhook_secret=webhook_secret
            )
        except Refused as refused:  # never quotes the secret
            return await self._payments_page(
                request, visit, company, {refused.field or "secret_key": refused.message}, 400
            )
        return self._done("payment_secrets_saved", PAYMENTS)

    # -- audit trail --------------------------------------------------------------------------------

    @admin(area="company")
    async def audit_trail(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        before_raw = request.query_params.get("before", "")
        before = int(before_raw) if before_raw.isascii() and before_raw.isdigit() and len(before_raw) < 19 else None
        events = await self.context.store.admins.audit_events(company.id, before_id=before, limit=AUDIT_PAGE + 1)
        older = ""
        if len(events) > AUDIT_PAGE:
            events = events[:AUDIT_PAGE]
            older = f"?before={events[-1].id}"
        return self._page(
            request,
            visit,
            "dashboard/audit.html",
            title=i18n.gettext("Audit trail"),
            section="audit",
            events=events,
            label=lambda action: i18n.gettext(audit.action_label(action)),
            older=older,
            newest=before is not None,
        )
