"""The account picker and switcher, and the customer's own Contacts page (when the company allows it).

An address that signs in to several of the company's accounts (its customers', its contacts') picks
one after signing in (``/accounts``) and switches from the header; each switch is checked against the
address's accounts in this company, on the server, when it is made (services/contacts.py).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.portal.views import Portal, Visit, customer, customer_form, page_headers
from billportal.services import contacts
from billportal.services.audit import Actor
from billportal.web.context import client_ip
from billportal.web.errors import error_page
from billportal.web.forms import Form
from billportal.web.templates import NO_STORE

_NOTICES: Final = {
    "added": N_("The contact is added. They can sign in with their email."),
    "changed": N_("The contact is changed."),
    "removed": N_("The contact is removed and signed out."),
}
_NOT_YOURS: Final = N_("That account is not one of yours. Choose one from the list.")


class ContactPages(Portal):
    """``/accounts`` (the picker, the switch) and ``/contacts`` (the customer's contacts)."""

    @customer("my_account")
    async def accounts(self, _request: Request, visit: Visit) -> Response:
        """The accounts the signed-in address may use (one alone: the page says so)."""
        return self._page(visit, "portal/accounts.html", page="accounts", role_names=contacts.ROLE_NAMES)

    @customer_form("my_account")
    async def switch(self, _request: Request, visit: Visit, form: Form) -> Response:
        """Point this session at another of its address's accounts (checked against them now)."""
        chosen = None
        if visit.accounts:
            chosen = await contacts.switch(
                self.context.store,
                visit.company.id,
                visit.session.id_hash,
                visit.session.email,
                form.text("account", 60),
            )
        if chosen is None:
            return error_page(403, _NOT_YOURS, headers=page_headers(visit.company))
        return RedirectResponse("/", status_code=303, headers=dict(NO_STORE))

    def _allowed(self, visit: Visit) -> bool:
        return visit.company.contacts_page

    def _actor(self, request: Request, visit: Visit) -> Actor:
        ip, agent = client_ip(request), request.headers.get("user-agent", "")[:300]
        if visit.contact is not None:
            return contacts.contact_actor(visit.contact, ip=ip, user_agent=agent)
        return Actor(f"customer {visit.customer.name} (#{visit.customer.id})"[:254], ip=ip, user_agent=agent)

    async def _contacts_page(
        self, visit: Visit, *, notice: str = "", error: str = "", values: dict[str, str] | None = None
    ) -> Response:
        listed = await contacts.of_customer(self.context.store, visit.company.id, visit.customer.id)
        return self._page(
            visit,
            "portal/contacts.html",
            status_code=400 if error else 200,
            page="contacts",
            contacts=listed,
            roles=contacts.ROLE_NAMES,
            notice=notice,
            error=error,
            values=values or {"name": "", "email": "", "role": "view"},
        )

    @customer("my_account", needs="manage")
    async def contacts(self, request: Request, visit: Visit) -> Response:
        """The customer's contacts: who may sign in for the business, and what each may do.

        Read only unless the company lets its customers manage their contacts.
        """
        return await self._contacts_page(visit, notice=_NOTICES.get(request.query_params.get("done", ""), ""))

    @customer_form("my_account", needs="manage")
    async def add_contact(self, request: Request, visit: Visit, form: Form) -> Response:
        if not self._allowed(visit):
            return error_page(404, headers=page_headers(visit.company))
        values = {name: form.text(name, 300) for name in ("name", "email", "role")}
        try:
            await contacts.add(
                self.context.store,
                visit.company,
                visit.customer.id,
                values,
                actor=self._actor(request, visit),
                now=self.context.clock(),
            )
        except Refused as refused:
            return await self._contacts_page(visit, error=refused.message, values=values)
        return RedirectResponse("/contacts?done=added", status_code=303, headers=dict(NO_STORE))

    @customer_form("my_account", needs="manage")
    async def change_contact(self, request: Request, visit: Visit, form: Form) -> Response:
        """Change a contact's role, or remove them (``action=remove``)."""
        if not self._allowed(visit):
            return error_page(404, headers=page_headers(visit.company))
        text = form.text("contact", 20)
        contact_id = int(text) if text.isascii() and text.isdigit() else 0
        store, now, actor = self.context.store, self.context.clock(), self._actor(request, visit)
        try:
            if form.text("action", 10) == "remove":
                await contacts.remove(store, visit.company, visit.customer.id, contact_id, actor=actor, now=now)
                done = "removed"
            else:
                values = {"role": form.text("role", 20)}
                await contacts.update(store, visit.company, visit.customer.id, contact_id, values, actor=actor, now=now)
                done = "changed"
        except Refused as refused:
            if refused.code == "not_found":
                return error_page(404, headers=page_headers(visit.company))
            return await self._contacts_page(visit, error=refused.message)
        return RedirectResponse(f"/contacts?done={done}", status_code=303, headers=dict(NO_STORE))
