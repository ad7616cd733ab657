"""Billing > Import in the dashboard: upload a CSV of customers, invoices or contacts, see each row checked, confirm.

The upload is checked by the same rules as the API (services/imports.py, in a
transaction that is rolled back) and kept in the database for half an hour, bound
to the admin's session and company under a random id. Nothing is written until the
admin confirms (the same route, naming the upload instead of sending a file); then
the file kept is imported in one transaction: all of it, or nothing. Files larger
than the dashboard takes go through ``billportal import``.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from billportal.core import i18n
from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.dashboard.auth import AdminVisit, admin
from billportal.dashboard.views import Dashboard
from billportal.services import audit, imports
from billportal.storage.records import Company
from billportal.web.forms import Form

IMPORTS: Final = "/imports"
KIND_LABELS: Final = {"customers": N_("Customers"), "invoices": N_("Invoices"), "contacts": N_("Contacts")}
# kind -> the columns the preview shows of each row, beside its line, outcome and errors: (heading, column)
SHOWN: Final = {
    "customers": ((N_("Customer id"), "id"), (N_("Name"), "name")),
    "invoices": ((N_("Invoice"), "number"), (N_("Line"), "description")),
    "contacts": (
        (N_("Customer id"), "customer_id"),
        (N_("Email"), "email"),
        (N_("Name"), "name"),
        (N_("Role"), "role"),
    ),
}
GONE: Final = N_("This upload was imported already, or it expired: upload the file again.")


class ImportPages(Dashboard):
    """The upload form, the preview of an upload, and its confirmation."""

    @admin(area="billing")
    async def imports_page(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        del company
        return self._upload_page(request, visit, kind="customers")

    def _upload_page(
        self, request: Request, visit: AdminVisit, *, kind: str, error: str = "", status_code: int = 200
    ) -> Response:
        return self._page(
            request,
            visit,
            "dashboard/imports/upload.html",
            status_code=status_code,
            title=i18n.gettext("Import"),
            section="imports",
            kind=kind,
            kinds={value: i18n.gettext(label) for value, label in KIND_LABELS.items()},
            error=error,
            columns=imports.COLUMNS,
            required=imports.REQUIRED,
            max_rows=imports.MAX_UPLOAD_ROWS,
        )

    @admin(form=True, upload=True, max_fields=3, area="billing")
    async def upload(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """Check the file and show each row with what importing it would do, or why it is refused.

        The preview's confirmation posts here too, naming the upload kept (``upload``) instead of a file.
        """
        if form.get("upload"):
            return await self._import_kept(request, visit, company, form.get("upload", ""))
        kind = form.get("kind", "")
        if kind not in imports.KINDS:
            return self._upload_page(
                request, visit, kind="customers", error=i18n.gettext("Choose what the file holds."), status_code=400
            )
        data = form.files.get("file", b"")
        try:
            parsed = imports.parse(data, kind, max_rows=imports.MAX_UPLOAD_ROWS)
        except imports.Unreadable as unreadable:
            message = unreadable.message
            if "more than" in message and "rows" in message:
                message += "; import larger files with the billportal import command"
            return self._upload_page(request, visit, kind=kind, error=message, status_code=400)
        now = self.context.clock()
        report = await imports.run(
            self.context.store,
            company,
            parsed,
            now=now,
            write=False,
            actor=visit.actor,
            batch_units=len(parsed.units),
        )
        token = ""
        if not report.refused:
            token = await imports.keep_upload(
                self.context.store,
                session_hash=visit.session.id_hash,
                company_id=company.id,
                kind=kind,
                data=data,
                now=now,
            )
        return self._page(
            request,
            visit,
            "dashboard/imports/preview.html",
            status_code=200 if not report.refused else 422,
            title=i18n.gettext("Import %(kind)s: preview") % {"kind": i18n.gettext(KIND_LABELS[kind]).lower()},
            section="imports",
            kind=kind,
            label=i18n.gettext(KIND_LABELS[kind]),
            shown=SHOWN[kind],
            rows=parsed.rows,
            report=report,
            token=token,
            minutes=imports.UPLOAD_SECONDS // 60,
        )

    async def _import_kept(self, request: Request, visit: AdminVisit, company: Company, token: str) -> Response:
        """Import the upload kept since its preview: all of it, or nothing."""
        now = self.context.clock()
        session_hash = visit.session.id_hash
        kept = await imports.kept_upload(
            self.context.store, token, session_hash=session_hash, company_id=company.id, now=now
        )
        if kept is None or kept.kind not in imports.KINDS:
            return self._upload_page(request, visit, kind="customers", error=i18n.gettext(GONE), status_code=409)
        kind = next(known for known in imports.KINDS if known == kept.kind)
        try:
            parsed = imports.parse(kept.data, kind, max_rows=imports.MAX_UPLOAD_ROWS)
        except Refused as refused:  # read once already: only a change of the rules between the two gets here
            return self._upload_page(request, visit, kind=kind, error=refused.message, status_code=400)
        report = await imports.run(
            self.context.store,
            company,
            parsed,
            now=now,
            write=True,
            actor=visit.actor,
            batch_units=len(parsed.units),
        )
        if not report.refused:
            await imports.drop_upload(self.context.store, token, session_hash=session_hash)
            detail = f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged"
            await audit.record(
                self.context.store, visit.actor, f"imports.{kind}", now, company_ids=[company.id], detail=detail
            )
        return self._page(
            request,
            visit,
            "dashboard/imports/preview.html",
            status_code=200 if not report.refused else 422,
            title=(
                i18n.gettext("Import %(kind)s: done")
                if not report.refused
                else i18n.gettext("Import %(kind)s: refused")
            )
            % {"kind": i18n.gettext(KIND_LABELS[kind]).lower()},
            section="imports",
            kind=kind,
            label=i18n.gettext(KIND_LABELS[kind]),
            shown=SHOWN[kind],
            rows=parsed.rows,
            report=report,
            token="",
            done=not report.refused,
            minutes=imports.UPLOAD_SECONDS // 60,
        )
