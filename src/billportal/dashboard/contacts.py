"""Billing > Customers > a customer's contacts: add, change a role, remove; and the company's Contacts page switch.

A contact signs in to the portal by email as that contact of the customer, with a role (services/contacts.py).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal.core import i18n
from billportal.core.errors import NotFound, Refused
from billportal.core.i18n import N_
from billportal.dashboard.auth import AdminVisit, admin
from billportal.dashboard.customers import CUSTOMERS
from billportal.dashboard.views import Dashboard
from billportal.services import contacts
from billportal.storage.records import Company
from billportal.web.errors import error_page
from billportal.web.forms import Form
from billportal.web.templates import NO_STORE

CONTACTS_PAGE: Final = "/settings/contacts-page"
NO_CUSTOMER: Final = N_("There is no such customer.")
NO_CONTACT: Final = N_("There is no such contact.")
_DONE: Final = {
    "added": N_("The contact is added: they can sign in to the portal with their email."),
    "changed": N_("The contact's role is changed; they were signed out."),
    "removed": N_("The contact is removed and signed out."),
    "page_on": N_("Customers can now manage their own contacts in the portal."),
    "page_off": N_("Customers can no longer manage their contacts in the portal; you still can."),
}


def _customer_id(request: Request) -> int:
    customer_id: int = request.path_params["customer_id"]
    return customer_id


def _contacts_url(customer_id: int, done: str) -> Response:
    return RedirectResponse(f"{CUSTOMERS}/{customer_id}/contacts?done={done}", status_code=303, headers=dict(NO_STORE))


class ContactPages(Dashboard):
    """A customer's contacts, managed by the company's admins."""

    async def _contacts_page(
        self,
        request: Request,
        visit: AdminVisit,
        company: Company,
        customer_id: int,
        *,
        error: str = "",
        values: dict[str, str] | None = None,
    ) -> Response:
        customer = await self.context.billing.customer(company.id, customer_id)
        if customer is None:
            return error_page(404, NO_CUSTOMER)
        listed = await contacts.of_customer(self.context.store, company.id, customer.id)
        return self._page(
            request,
            visit,
            "dashboard/contacts.html",
            status_code=400 if error else 200,
            title=i18n.gettext("Contacts of %(name)s") % {"name": customer.name},
            section="customers",
            customer=customer,
            contacts=listed,
            roles=contacts.ROLE_NAMES,
            done=i18n.gettext(_DONE.get(request.query_params.get("done", ""), "")),
            error=error,
            values=values or {"name": "", "email": "", "role": "view"},
        )

    @admin(area="billing")
    async def contacts(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        return await self._contacts_page(request, visit, company, _customer_id(request))

    @admin(form=True, area="billing")
    async def add(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        customer_id = _customer_id(request)
        values = {name: form.text(name, 300) for name in ("name", "email", "role")}
        try:
            await contacts.add(
                self.context.store, company, customer_id, values, actor=visit.actor, now=self.context.clock()
            )
        except NotFound:
            return error_page(404, NO_CUSTOMER)
        except Refused as refused:
            return await self._contacts_page(request, visit, company, customer_id, error=refused.message, values=values)
        return _contacts_url(customer_id, "added")

    @admin(form=True, area="billing")
    async def change(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """Change a contact's role, or remove them (``action=remove``)."""
        customer_id = _customer_id(request)
        text = form.text("contact", 20)
        contact_id = int(text) if text.isascii() and text.isdigit() else 0
        store, now = self.context.store, self.context.clock()
        try:
            if form.text("action", 10) == "remove":
                await contacts.remove(store, company, customer_id, contact_id, actor=visit.actor, now=now)
                return _contacts_url(customer_id, "removed")
            values = {"role": form.text("role", 20)}
            await contacts.update(store, company, customer_id, contact_id, values, actor=visit.actor, now=now)
        except NotFound:
            return error_page(404, NO_CONTACT)
        except Refused as refused:
            return await self._contacts_page(request, visit, company, customer_id, error=refused.message)
        return _contacts_url(customer_id, "changed")

    @admin(form=True, area="company")
    async def set_contacts_page(self, _request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """The company's switch: may customers manage their own contacts on the portal's Contacts page?"""
        enabled = form.get("enabled") == "on"
        now = self.context.clock()
        await contacts.set_contacts_page(self.context.store, company, enabled, actor=visit.actor, now=now)
        back = form.text("back", 40)
        customer = back if back.isascii() and back.isdigit() else ""
        done = "page_on" if enabled else "page_off"
        if customer:
            return _contacts_url(int(customer), done)
        return RedirectResponse(f"{CUSTOMERS}?done={done}", status_code=303, headers=dict(NO_STORE))
