"""Settings > Email: which kinds of email the company sends, where they go, and the latest messages."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal.core import i18n
from billportal.core.i18n import N_
from billportal.dashboard.auth import AdminAuth, AdminVisit, admin
from billportal.services.mail import KINDS, MailConfig
from billportal.storage.records import Company
from billportal.web.context import Context
from billportal.web.forms import Form
from billportal.web.templates import NO_STORE, render

EMAIL: Final = "/settings/email"
# A queued message's state, as the message log shows it.
MAIL_STATES: Final = {"pending": N_("Pending"), "sent": N_("Sent"), "bounced": N_("Bounced"), "failed": N_("Failed")}


class MailPages:
    """The dashboard's email settings page of one process."""

    def __init__(self, context: Context, auth: AdminAuth) -> None:
        self.context = context
        self.auth = auth

    @admin(area="company")
    async def settings(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        kinds = await self.context.mail.kinds(company.id)
        messages = await self.context.mail.messages(company.id, limit=20)
        return render(
            "dashboard/email.html",
            admin=visit.admin,
            company=visit.company,
            companies=visit.companies,
            csrf_token=visit.session.csrf_token,
            section="email",
            title=i18n.gettext("Email"),
            notice=i18n.gettext("Saved.") if request.query_params.get("notice") == "saved" else "",
            kinds=[
                (kind.value, i18n.gettext(info.label), kinds[kind]) for kind, info in KINDS.items() if info.configurable
            ],
            messages=messages,
            states={state: i18n.gettext(label) for state, label in MAIL_STATES.items()},
            where=MailConfig.from_settings(self.context.settings).where,
        )

    @admin(form=True, area="company")
    async def save(self, _request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        changes = {kind.value: form.get(kind.value) == "on" for kind, info in KINDS.items() if info.configurable}
        await self.context.mail.change(company.id, changes, actor=visit.actor, now=self.context.clock())
        return RedirectResponse(f"{EMAIL}?notice=saved", status_code=303, headers=dict(NO_STORE))
