"""Billing > Customers in the dashboard: the list, a customer's page, the customer form, delete, and the portal as them.

A customer is created, changed and deleted through the one write model
(``Books``), with the API's own input rules (the shape in web/objects.py) and
words, in one transaction with its audit entry (old and new values) and its
webhook events. "Open the portal as this customer" makes a single-use sign-in
link that lives a minute, after the admin's password (sudo), with the
company's SSO key: the sign-in log names the dashboard admin as its issuer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal import _links
from billportal.core import i18n
from billportal.core.clock import local_date
from billportal.core.countries import countries as country_list
from billportal.core.errors import NotFound, Refused
from billportal.core.i18n import N_
from billportal.dashboard.auth import AdminVisit, Sudo, admin
from billportal.dashboard.forms import LogFilters
from billportal.dashboard.sign_in_log import log_page
from billportal.dashboard.views import SSO, Confirmation, Dashboard
from billportal.services import audit
from billportal.services import sso as management
from billportal.services.audit import Actor
from billportal.services.billing import Books
from billportal.services.payments import AutoPay
from billportal.storage.customer_lists import SCAN_WINDOW
from billportal.storage.documents import Scope
from billportal.storage.records import Company, Customer, CustomerEvent
from billportal.web.errors import error_page
from billportal.web.forms import Form
from billportal.web.labels import method_label, status_label
from billportal.web.objects import CUSTOMER
from billportal.web.shapes import Invalid, check_object
from billportal.web.templates import NO_STORE

CUSTOMERS: Final = "/customers"
PAGE_SIZE: Final = 25
SEARCH_LIMIT: Final = 100  # characters of a search kept
OWING: Final = {"": N_("All"), "balance": N_("With a balance"), "past_due": N_("Past due")}
RECENT: Final = 10  # documents of each kind, sign-ins and portal changes on a customer's page
PORTAL_LINK_SECONDS: Final = 60
ADMIN_ISSUER: Final = "billportal dashboard"  # the iss of an admin's link: the sign-in log shows it
FIELD_LIMIT: Final = 1000  # characters of a typed field read; the shape says how many it may have

# The form's fields, in the shape's names, as the form labels them.
LABELS: Final = {
    "id": N_("Customer id"),
    "number": N_("Account number"),
    "name": N_("Name"),
    "email": N_("Billing email"),
    "phone": N_("Phone"),
    "address_line1": N_("Address line 1"),
    "address_line2": N_("Address line 2"),
    "city": N_("City"),
    "state": N_("State or province"),
    "postal_code": N_("Postal code"),
    "country": N_("Country"),
    "tax_id": N_("Tax or VAT id"),
    "currency": N_("Currency"),
}
EDITABLE: Final = tuple(name for name in LABELS if name != "id")  # the id is the sub claim of sign-in links
NOTICES: Final = {
    "created": N_("The customer is created."),
    "saved": N_("The customer is saved."),
    "unchanged": N_("Nothing changed."),
    "deleted": N_("The customer is deleted, and signed out of the portal."),
}
NOT_FOUND: Final = N_("There is no such customer.")


def _after(request: Request) -> int | None:
    raw = request.query_params.get("after", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 20 else None


def typed_values(form: Form, names: tuple[str, ...]) -> dict[str, str]:
    """The fields the form sent (one it did not send is left as it is, as a PATCH leaves it)."""
    return {name: form.text(name, FIELD_LIMIT).strip() for name in names if name in form}


def create_values(typed: dict[str, str]) -> dict[str, Any]:
    """What the form asks to create, as the API's body would say it: empty fields left to their defaults."""
    values: dict[str, Any] = {name: value for name, value in typed.items() if value and name != "id"}
    if "name" in typed:
        values["name"] = typed["name"]  # empty: refused by the shape, as the API refuses "name": ""
    raw_id = typed.get("id", "")
    if raw_id:
        values["id"] = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 20 else raw_id
    return values


def changed_values(typed: dict[str, str], customer: Customer) -> dict[str, str]:
    """The fields typed differently from what the customer has: only those are checked and changed (as a PATCH)."""
    return {name: value for name, value in typed.items() if value != getattr(customer, name)}


def _detail_text(customer_id: int, values: dict[str, Any]) -> str:
    return f"customer {customer_id} " + json.dumps(values, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, slots=True)
class PortalChange:
    """A change the customer made in the portal, as the customer's page shows it."""

    at: int
    kind: str  # billing_info.updated, estimate.approved, estimate.declined
    changes: dict[str, dict[str, str]]  # billing details: field -> {"old", "new"} (empty for older records)
    fields: list[str]
    detail: dict[str, Any]


def portal_change(event: CustomerEvent) -> PortalChange:
    try:
        detail = json.loads(event.detail) if event.detail else {}
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    changes = detail.get("changes") if isinstance(detail.get("changes"), dict) else {}
    fields = detail.get("fields") if isinstance(detail.get("fields"), list) else []
    return PortalChange(event.at, event.kind, changes or {}, [str(f) for f in fields or []], detail)


class CustomerPages(Dashboard):
    """The customers list, a customer's page, the customer form, delete, and the portal as a customer."""

    notices = NOTICES

    @admin(area="billing")
    async def customers_list(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        search = " ".join(request.query_params.get("q", "").split())[:SEARCH_LIMIT]
        owing = request.query_params.get("owing", "")
        owing = owing if owing in OWING else ""
        after = _after(request)
        today = local_date(self.context.clock(), company.time_zone).isoformat()
        page = await self.context.billing.customer_page(
            company.id, limit=PAGE_SIZE, after=after, search=search, owing=owing, today=today
        )
        return self._page(
            request,
            visit,
            "dashboard/customers.html",
            title=i18n.gettext("Customers"),
            section="customers",
            rows=page.rows,
            next_after=page.next_after,
            window_ended=page.window_ended,
            scan_window=SCAN_WINDOW,
            first_page=after is None,
            search=search,
            owing=owing,
            owing_choices={value: i18n.gettext(label) for value, label in OWING.items()},
        )

    # -- a customer's page ---------------------------------------------------------------------------

    @admin(area="billing")
    async def customer_detail(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        customer = await self.context.billing.customer(company.id, request.path_params["customer_id"])
        if customer is None:
            return error_page(404, NOT_FOUND)
        return await self._detail(request, visit, company, customer)

    async def _detail(
        self,
        request: Request,
        visit: AdminVisit,
        company: Company,
        customer: Customer,
        *,
        status_code: int = 200,
        problem: str = "",
    ) -> Response:
        billing = self.context.billing
        store = self.context.store
        today = local_date(self.context.clock(), company.time_zone).isoformat()
        scope = Scope(company.id, customer.id)
        balance = await billing.account_balance(company.id, customer.id, customer.currency, today=today)
        invoices, invoice_count = await billing.invoices(scope, limit=RECENT)
        payments, payment_count = await billing.documents("payment", scope, limit=RECENT)
        credit_notes, credit_note_count = await billing.documents("credit_note", scope, limit=RECENT)
        estimates, estimate_count = await billing.documents("estimate", scope, limit=RECENT)
        filters = LogFilters(customer_id=customer.id, customer_text=str(customer.id))
        sign_ins = await log_page(store, company.id, filters, None, RECENT)
        events = await billing.customer_events(company.id, customer_id=customer.id, limit=RECENT * 5)
        changes = [portal_change(event) for event in events]
        autopay = AutoPay(store)
        settings = await self.context.payments.settings(company.id)
        return self._page(
            request,
            visit,
            "dashboard/customer.html",
            status_code=status_code,
            headers=self.auth.portal_form_csp(company),
            title=customer.name or f"Customer {customer.id}",
            section="customers",
            customer=customer,
            balance=balance,
            invoices=invoices,
            invoice_count=invoice_count,
            payments=payments,
            payment_count=payment_count,
            credit_notes=credit_notes,
            credit_note_count=credit_note_count,
            estimates=estimates,
            estimate_count=estimate_count,
            sign_ins=sign_ins.events,
            sign_ins_url=f"{SSO}/log?customer={customer.id}",
            billing_changes=[c for c in changes if c.kind == "billing_info.updated"][:RECENT],
            estimate_answers=[c for c in changes if c.kind.startswith("estimate.")][:RECENT],
            autopay=await autopay.enrolled(company.id, customer.id),
            autopay_offered=settings.online and settings.allow_autopay,
            autopay_failures=(await autopay.failures(company.id, customer.id))[:RECENT],
            method_label=method_label,
            status_label=status_label,
            bounce=await self.context.mail.bounce(company.id, customer.email),
            labels={name: i18n.gettext(label) for name, label in LABELS.items()},
            problem=problem,
            portal_seconds=PORTAL_LINK_SECONDS,
        )

    # -- the form: create and edit --------------------------------------------------------------------

    def _form_page(
        self,
        request: Request,
        visit: AdminVisit,
        company: Company,
        *,
        customer: Customer | None,
        values: dict[str, str],
        errors: dict[str, str],
        status_code: int = 200,
    ) -> Response:
        return self._page(
            request,
            visit,
            "dashboard/customer_form.html",
            status_code=status_code,
            title=i18n.gettext("New customer")
            if customer is None
            else i18n.gettext("Edit %(name)s") % {"name": customer.name or customer.id},
            section="customers",
            customer=customer,
            values={**dict.fromkeys(LABELS, ""), **values},
            errors=errors,
            labels={name: i18n.gettext(label) for name, label in LABELS.items()},
            countries=country_list(),
            default_currency=company.default_currency,
            action=f"{CUSTOMERS}/new" if customer is None else f"{CUSTOMERS}/{customer.id}/edit",
        )

    @admin(area="billing")
    async def new_customer(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        return self._form_page(request, visit, company, customer=None, values={}, errors={})

    @admin(form=True, max_fields=len(LABELS) + 2, area="billing")
    async def create_customer(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """The API's create: the shape's rules, then ``Books.create_customer``, audited in its transaction."""
        typed = typed_values(form, tuple(LABELS))
        actor = visit.actor
        try:
            values = check_object(create_values(typed), CUSTOMER.for_create())
            created = await self.context.billing.write(
                company.id, lambda books: _create(books, values, actor), now=self.context.clock()
            )
        except (Invalid, Refused) as refused:
            errors = _errors(refused)
            return self._form_page(
                request, visit, company, customer=None, values=typed, errors=errors, status_code=_status(refused)
            )
        return _to(f"{CUSTOMERS}/{created.id}?notice=created")

    @admin(area="billing")
    async def edit_customer(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        customer = await self.context.billing.customer(company.id, request.path_params["customer_id"])
        if customer is None:
            return error_page(404, NOT_FOUND)
        values = {name: str(getattr(customer, name)) for name in EDITABLE}
        return self._form_page(request, visit, company, customer=customer, values=values, errors={})

    @admin(form=True, max_fields=len(LABELS) + 2, area="billing")
    async def update_customer(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """The API's PATCH of what was changed: the shape's rules, then ``Books.change_customer``, audited."""
        customer = await self.context.billing.customer(company.id, request.path_params["customer_id"])
        if customer is None:
            return error_page(404, NOT_FOUND)
        typed = typed_values(form, EDITABLE)
        actor = visit.actor
        try:
            values = check_object(changed_values(typed, customer), CUSTOMER.for_update())
            previous = await self.context.billing.write(
                company.id, lambda books: _update(books, customer.id, values, actor), now=self.context.clock()
            )
        except NotFound:  # deleted meanwhile
            return error_page(404, NOT_FOUND)
        except (Invalid, Refused) as refused:
            errors = _errors(refused)
            return self._form_page(
                request, visit, company, customer=customer, values=typed, errors=errors, status_code=_status(refused)
            )
        return _to(f"{CUSTOMERS}/{customer.id}?notice={'saved' if previous else 'unchanged'}")

    # -- delete -------------------------------------------------------------------------------------------

    @admin(form=True, area="billing")
    async def delete_customer(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """As the API deletes: only a customer without documents; asked to confirm first; signed out after."""
        customer = await self.context.billing.customer(company.id, request.path_params["customer_id"])
        if customer is None:
            return error_page(404, NOT_FOUND)
        page = f"{CUSTOMERS}/{customer.id}"
        if form.get("confirm") != "yes":
            shown = customer.name or i18n.gettext("customer %(id)s") % {"id": customer.id}
            question = i18n.gettext("Delete %(name)s?") % {"name": shown}
            return self._page(
                request,
                visit,
                "dashboard/confirm.html",
                title=question,
                section="customers",
                action=request.url.path,
                confirmation=Confirmation(
                    question,
                    (
                        i18n.gettext(
                            "Customer %(id)s is deleted and signed out of the portal; sign-in links for"
                            " this id are refused from now on. This cannot be undone."
                        )
                        % {"id": customer.id},
                        i18n.gettext(
                            "A customer with invoices, payments, credit notes or estimates cannot be deleted."
                        ),
                    ),
                    i18n.gettext("Delete the customer"),
                    {},
                    cancel=page,
                ),
            )
        actor = visit.actor
        try:
            await self.context.billing.write(
                company.id, lambda books: _delete(books, customer.id, actor), now=self.context.clock()
            )
        except NotFound:
            return error_page(404, NOT_FOUND)
        except Refused as refused:
            problem = i18n.gettext("The customer is not deleted: %(reason)s.") % {"reason": refused.message}
            return await self._detail(request, visit, company, customer, status_code=409, problem=problem)
        await self.context.store.end_customer_sessions(company.id, customer.id)
        return _to(f"{CUSTOMERS}?notice=deleted")

    # -- the portal as this customer -------------------------------------------------------------------

    @admin(
        form=True, sudo=Sudo(N_("Opening the portal as a customer"), N_("Confirm and open the portal")), area="billing"
    )
    async def open_portal(self, request: Request, visit: AdminVisit, company: Company, _form: Form) -> Response:
        """A single-use link that lives a minute, made with the active SSO key; the browser is sent to it."""
        store = self.context.store
        customer_id: int = request.path_params["customer_id"]
        if not await store.customer_exists(company.id, customer_id):
            return error_page(404, NOT_FOUND)
        key = management.active_key(company)
        policy = company.policy
        issuer = admin_issuer(visit.admin.email, policy.allowed_issuers)
        if not company.sso_enabled:
            return error_page(409, N_("Single sign-on is off: turn it on to open the portal as a customer."))
        if key is None:
            return error_page(409, N_("There is no active SSO key: rotate to create one."))
        if issuer is None:
            return error_page(
                409, f'The sign-in policy allows only some issuers: add "{ADMIN_ISSUER}" to open the portal from here.'
            )
        ttl = min(PORTAL_LINK_SECONDS, policy.max_lifetime or PORTAL_LINK_SECONDS)
        now = self.context.clock()
        link = _links.sign_in_url(
            key.secret.decode("utf-8"),
            company.username,
            customer_id,
            issuer=issuer,
            ttl=ttl,
            single_use=True,
            base_url=self.context.settings.base_url,
            kid=key.kid,
            now=now,
        )
        token = link.rpartition("/login/")[2]
        jti = jwt.decode(token, options={"verify_signature": False})["jti"]  # made just above
        detail = f"customer {customer_id}: single-use link {jti}, valid {ttl} s, issuer {issuer!r}"
        await audit.record(store, visit.actor, "customer.portal_opened", now, company_ids=[company.id], detail=detail)
        headers = dict(NO_STORE)
        headers["Referrer-Policy"] = "no-referrer"
        return RedirectResponse(link, status_code=303, headers=headers)


def admin_issuer(email: str, allowed: frozenset[str]) -> str | None:
    """The link's issuer: the dashboard and the admin; the bare dashboard's where the policy lists issuers."""
    named = f"{ADMIN_ISSUER}: {email}"[:200]
    if not allowed or named in allowed:
        return named
    return ADMIN_ISSUER if ADMIN_ISSUER in allowed else None


def _create(books: Books, values: dict[str, Any], actor: Actor) -> Customer:
    created = books.create_customer(values)
    shown = {name: getattr(created, name) for name in LABELS if name != "id"}
    audit.record_in(
        books.conn,
        actor,
        "customer.created",
        books.now,
        company_ids=[books.company_id],
        detail=_detail_text(created.id, shown),
    )
    return created


def _update(books: Books, customer_id: int, values: dict[str, Any], actor: Actor) -> dict[str, Any]:
    updated, previous = books.change_customer(customer_id, values)
    if previous:
        changes = {name: {"old": old, "new": getattr(updated, name)} for name, old in previous.items()}
        audit.record_in(
            books.conn,
            actor,
            "customer.updated",
            books.now,
            company_ids=[books.company_id],
            detail=_detail_text(customer_id, changes),
        )
    return previous


def _delete(books: Books, customer_id: int, actor: Actor) -> None:
    deleted = books.delete_customer(customer_id)
    shown = {name: getattr(deleted, name) for name in LABELS if name != "id"}
    audit.record_in(
        books.conn,
        actor,
        "customer.deleted",
        books.now,
        company_ids=[books.company_id],
        detail=_detail_text(customer_id, shown),
    )


def _errors(refused: Invalid | Refused) -> dict[str, str]:
    """The message beside its field (the API's words); one about no field of the form, above the form."""
    name = (refused.field or "").partition(".")[0].partition("[")[0]
    return {name if name in LABELS else "form": refused.message}


def _status(refused: Invalid | Refused) -> int:
    return 409 if isinstance(refused, Refused) and refused.code in ("customer_exists", "conflict") else 400


def _to(path: str) -> Response:
    return RedirectResponse(path, status_code=303, headers=dict(NO_STORE))
