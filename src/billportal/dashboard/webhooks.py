"""Settings > Developers > Webhooks: a company's endpoints, their signing secrets (shown once) and delivery log.

Adding an endpoint and rotating its secret ask for the admin's password again (sudo):
each answers a new secret, carried across post/redirect/get (``shown_once``) and shown
on the next page only. An endpoint the deliverer turned off is flagged at the top.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal.core import i18n
from billportal.core.errors import NotFound, Refused
from billportal.core.i18n import N_
from billportal.dashboard import shown_once
from billportal.dashboard.auth import AdminAuth, AdminVisit, Sudo, admin
from billportal.services.events import EVENT_TYPES
from billportal.services.webhooks import ShownSecret
from billportal.storage.records import Company
from billportal.web.context import Context
from billportal.web.errors import error_page
from billportal.web.forms import Form
from billportal.web.templates import NO_STORE, render

WEBHOOKS: Final = "/settings/developers/webhooks"
SHOWN_KIND: Final = "webhook-secret"
NO_ENDPOINT: Final = N_("No such webhook endpoint.")
SINCE_CHOICES: Final = {"3600": N_("the last hour"), "86400": N_("the last 24 hours"), "604800": N_("the last 7 days")}
NOTICES: Final = {
    "removed": N_("The endpoint is removed: no more events are sent to it."),
    "enabled": N_("The endpoint is on: events waiting for it are sent now."),
    "disabled": N_("The endpoint is off: events for it wait until it is turned on again."),
    "redelivering": N_("The events are being sent again."),
    "nothing": N_("There was nothing to send again."),
}


class WebhookPages:
    """The dashboard's webhook pages of one process."""

    def __init__(self, context: Context, auth: AdminAuth) -> None:
        self.context = context
        self.auth = auth
        self.webhooks = context.webhooks

    def _page(
        self, request: Request, visit: AdminVisit, template: str, status_code: int = 200, **values: Any
    ) -> Response:
        return render(
            template,
            status_code=status_code,
            admin=visit.admin,
            company=visit.company,
            companies=visit.companies,
            csrf_token=visit.session.csrf_token,
            notice=i18n.gettext(NOTICES.get(request.query_params.get("notice", ""), "")),
            section="webhooks",
            **values,
        )

    @admin(area="developer")
    async def endpoints(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        """The endpoints; after one was added or rotated (``?shown={id}``), its secret, once."""
        shown_raw = request.query_params.get("shown", "")
        shown: ShownSecret | None = None
        shown_already = False
        found = await self.webhooks.endpoints(company.id)
        if shown_raw.isdigit() and len(shown_raw) < 10:
            endpoint = next((e for e in found if e.id == int(shown_raw)), None)
            secret = None
            if endpoint is not None:
                secret = shown_once.take(
                    request,
                    self.context.settings,
                    self.context.store.master_keys,
                    session_hash=visit.session.id_hash,
                    company_id=company.id,
                    key_id=endpoint.id,
                    now=self.context.clock(),
                    kind=SHOWN_KIND,
                )
            shown = ShownSecret(endpoint, secret) if endpoint is not None and secret is not None else None
            shown_already = endpoint is not None and secret is None
        response = self._endpoints_page(request, visit, found, shown=shown, shown_already=shown_already)
        shown_once.forget(request, response, self.context.settings)
        return response

    def _endpoints_page(
        self,
        request: Request,
        visit: AdminVisit,
        found: Any,
        *,
        status_code: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        shown: ShownSecret | None = None,
        shown_already: bool = False,
    ) -> Response:
        return self._page(
            request,
            visit,
            "dashboard/webhooks.html",
            status_code=status_code,
            title=i18n.gettext("Webhooks"),
            endpoints=found,
            disabled=[e for e in found if not e.enabled and e.disabled_reason],
            event_types=EVENT_TYPES,
            errors=errors or {},
            values=values or {"types": ()},
            shown=shown,
            shown_already=shown_already,
        )

    def _carry(self, visit: AdminVisit, company: Company, shown: ShownSecret) -> Response:
        # Post/redirect/get: a reload of the page that shows the secret makes nothing new.
        response = RedirectResponse(f"{WEBHOOKS}?shown={shown.endpoint.id}", status_code=303, headers=dict(NO_STORE))
        shown_once.carry(
            response,
            self.context.settings,
            self.context.store.master_keys,
            secret=shown.secret,
            session_hash=visit.session.id_hash,
            company_id=company.id,
            key_id=shown.endpoint.id,
            now=self.context.clock(),
            kind=SHOWN_KIND,
        )
        return response

    @admin(
        form=True,
        max_fields=40,
        sudo=Sudo(N_("Adding a webhook endpoint"), N_("Confirm and add the endpoint")),
        area="developer",
    )
    async def add(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        url = form.get("url", "").strip()
        description = form.get("description", "").strip()
        types = tuple(name for name in EVENT_TYPES if form.get(f"type_{name}") == "on")
        try:
            shown = await self.webhooks.add(
                company.id, url, types, description=description, actor=visit.actor, now=self.context.clock()
            )
        except Refused as exc:
            found = await self.webhooks.endpoints(company.id)
            errors = {"types" if exc.field == "event_types" else (exc.field or "url"): exc.message}
            values = {"url": url[:2000], "description": description[:200], "types": types}
            return self._endpoints_page(request, visit, found, status_code=400, errors=errors, values=values)
        return self._carry(visit, company, shown)

    @admin(form=True, sudo=Sudo(N_("Rotating a webhook signing secret"), N_("Confirm and rotate")), area="developer")
    async def rotate(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        del form
        try:
            shown = await self.webhooks.rotate(
                company.id, _endpoint_id(request), actor=visit.actor, now=self.context.clock()
            )
        except NotFound:
            return error_page(404, NO_ENDPOINT)
        return self._carry(visit, company, shown)

    @admin(form=True, area="developer")
    async def remove(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        endpoint_id = _endpoint_id(request)
        try:
            endpoint = await self.webhooks.endpoint(company.id, endpoint_id)
            if form.get("confirm") != "yes":
                return self._page(
                    request,
                    visit,
                    "dashboard/webhook_remove.html",
                    title=i18n.gettext("Remove endpoint"),
                    endpoint=endpoint,
                )
            await self.webhooks.remove(company.id, endpoint_id, actor=visit.actor, now=self.context.clock())
        except NotFound:
            return error_page(404, NO_ENDPOINT)
        return _done("removed")

    @admin(form=True, area="developer")
    async def switch(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        enabled = form.get("enabled") == "on"
        try:
            await self.webhooks.change(
                company.id, _endpoint_id(request), enabled=enabled, actor=visit.actor, now=self.context.clock()
            )
        except NotFound:
            return error_page(404, NO_ENDPOINT)
        return _done("enabled" if enabled else "disabled")

    @admin(area="developer")
    async def deliveries(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        """One endpoint's deliveries (``?endpoint={id}``, or the first endpoint's), newest first, with every attempt."""
        raw = request.query_params.get("endpoint", "")
        if raw.isdigit() and len(raw) <= 9:
            endpoint_id = int(raw)
        else:  # none chosen: the first endpoint's, or the list (with none to show)
            found = await self.webhooks.endpoints(company.id)
            if not found:
                return self._endpoints_page(request, visit, found)
            endpoint_id = found[0].id
        try:
            endpoint = await self.webhooks.endpoint(company.id, endpoint_id)
            deliveries = await self.webhooks.deliveries(company.id, endpoint_id, limit=100)
        except NotFound:
            return error_page(404, NO_ENDPOINT)
        return self._page(
            request,
            visit,
            "dashboard/webhook_log.html",
            title=i18n.gettext("Webhook deliveries"),
            endpoint=endpoint,
            deliveries=deliveries,
            since_choices={value: i18n.gettext(label) for value, label in SINCE_CHOICES.items()},
        )

    @admin(form=True, area="developer")
    async def redeliver(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        endpoint_id = _endpoint_id(request)
        now = self.context.clock()
        event_id = form.get("event_id", "").strip() or None
        since = form.get("since", "")
        try:
            await self.webhooks.endpoint(company.id, endpoint_id)
            count = 0
            if event_id is not None or since in SINCE_CHOICES:
                count = await self.webhooks.redeliver(
                    company.id,
                    endpoint_id,
                    event_id=event_id[:40] if event_id else None,
                    failed_since=None if event_id else now - int(since),
                    actor=visit.actor,
                    now=now,
                )
        except NotFound:
            return error_page(404, NO_ENDPOINT)
        return RedirectResponse(
            f"{WEBHOOKS}/deliveries?endpoint={endpoint_id}&notice={'redelivering' if count else 'nothing'}",
            status_code=303,
            headers=dict(NO_STORE),
        )


def _endpoint_id(request: Request) -> int:
    endpoint_id: int = request.path_params["endpoint_id"]
    return endpoint_id


def _done(notice: str) -> Response:
    return RedirectResponse(f"{WEBHOOKS}?notice={notice}", status_code=303, headers=dict(NO_STORE))
