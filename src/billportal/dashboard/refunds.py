"""Billing > Payments in the dashboard: the company's payments, online and offline, and refunding one.

A refund is money leaving the company: its form asks for a confirmation, and the
admin's password again (sudo). The form carries a one-time token, so a double
submit or a reload refunds once (services/refunds.py keeps the refund under it).
"""

from __future__ import annotations

import secrets
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billportal.core import i18n
from billportal.core.errors import NotFound, Refused
from billportal.core.i18n import N_
from billportal.core.money import format_money, parse_money
from billportal.dashboard.auth import AdminVisit, Sudo, admin
from billportal.dashboard.views import Confirmation, Dashboard
from billportal.services import audit
from billportal.services.refunds import PaymentRefunds, RefundRequest, request_key
from billportal.storage.records import Company, Payment
from billportal.web.errors import error_page
from billportal.web.forms import Form
from billportal.web.labels import method_label
from billportal.web.templates import NO_STORE

PAYMENTS_LIST: Final = "/payments"
DONE: Final = {
    "recorded": N_("The payment is recorded."),
    "saved": N_("The changes are saved."),
    "unchanged": N_("Nothing changed."),
}
_TOKEN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class PaymentPages(Dashboard):
    """A payment with its refunds, and the refund form (the list is documents.py's)."""

    @admin(area="billing")
    async def payment_detail(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        payment = await self._payment(request, company)
        if payment is None:
            return error_page(404, N_("There is no such payment."))
        return await self._detail(request, visit, payment)

    async def _payment(self, request: Request, company: Company) -> Payment | None:
        payment_id: int = request.path_params["payment_id"]
        return await PaymentRefunds(self.context.store).payment(company.id, payment_id)

    async def _detail(
        self,
        request: Request,
        visit: AdminVisit,
        payment: Payment,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        values = values or {}
        customer = await self.context.billing.customer(payment.company_id, payment.customer_id)
        return self._page(
            request,
            visit,
            "dashboard/payment.html",
            status_code=status_code,
            title=i18n.gettext("Payment %(number)s") % {"number": payment.number},
            section="payments_list",
            payment=payment,
            customer=customer,
            method_label=method_label,
            values=values,
            errors=errors or {},
            token=values.get("token") or secrets.token_urlsafe(18),
            refunded=request.query_params.get("refunded") == "1",
            done=i18n.gettext(DONE.get(request.query_params.get("done", ""), "")),
        )

    @admin(form=True, sudo=Sudo(N_("Refunding a payment"), N_("Confirm and refund")), area="billing")
    async def refund(self, request: Request, visit: AdminVisit, company: Company, form: Form) -> Response:
        """Refund after a confirmation (and the password again); once per form, whatever resends it."""
        payment = await self._payment(request, company)
        if payment is None:
            return error_page(404, N_("There is no such payment."))
        values = {name: form.text(name, 500).strip() for name in ("amount", "reason", "token")}
        try:
            amount = _amount(values["amount"], payment.currency)
        except ValueError:
            errors = {
                "amount": i18n.gettext("Enter an amount more than zero, such as 12.50, or leave it empty for all.")
            }
            return await self._detail(request, visit, payment, values=values, errors=errors, status_code=400)
        if form.get("confirm") != "yes":
            return self._confirm(request, visit, _confirmation(payment, amount, values))
        if not 16 <= len(values["token"]) <= 64 or not set(values["token"]) <= _TOKEN_CHARS:
            return error_page(400, N_("This form is out of date. Open the payment again and refund from there."))
        return await self._refund_now(request, visit, company=company, payment=payment, amount=amount, values=values)

    async def _refund_now(
        self,
        request: Request,
        visit: AdminVisit,
        *,
        company: Company,
        payment: Payment,
        amount: int | None,
        values: dict[str, str],
    ) -> Response:
        now = self.context.clock()
        wanted = RefundRequest(
            payment.id, amount, values["reason"], "dashboard", request_key("dashboard", values["token"])
        )
        try:
            refund = await PaymentRefunds(self.context.store).refund(company, wanted, now=now)
        except NotFound:  # deleted meanwhile
            return error_page(404, N_("There is no such payment."))
        except Refused as refused:
            payment = await PaymentRefunds(self.context.store).payment(company.id, payment.id) or payment
            message = refused.message
            if refused.code in ("refund_exceeds_payment", "payment_fully_refunded", "invalid_field"):
                message = i18n.gettext("At most %(amount)s is left to refund.") % {
                    "amount": format_money(max(payment.refundable, 0), payment.currency)
                }
            errors = {"amount" if refused.field in (None, "amount") else "form": message}
            fresh = {**values, "token": ""}  # a new form: a refused refund's token answers the same again
            return await self._detail(request, visit, payment, values=fresh, errors=errors, status_code=400)
        detail = f"{payment.number}: {format_money(refund.amount, payment.currency)}"
        await audit.record(
            self.context.store, visit.actor, "payment.refunded", now, company_ids=[company.id], detail=detail
        )
        return RedirectResponse(f"{PAYMENTS_LIST}/{payment.id}?refunded=1", status_code=303, headers=dict(NO_STORE))


def _amount(text: str, currency: str) -> int | None:
    """The amount typed, in minor units (None: empty, all that is left); ValueError unless more than zero."""
    if not text:
        return None
    try:
        amount = parse_money(text, currency)
    except ArithmeticError:  # an exponent too large for the decimal context
        raise ValueError("not an amount") from None
    if amount <= 0:
        raise ValueError("not more than zero")
    return amount


def _confirmation(payment: Payment, amount: int | None, values: dict[str, str]) -> Confirmation:
    shown = format_money(payment.refundable if amount is None else amount, payment.currency)
    given_back = (
        i18n.gettext("%(amount)s is given back to the customer, at the payment gateway and in the books.")
        if payment.gateway_payment_id
        else i18n.gettext("%(amount)s is given back to the customer, in the books only.")
    )
    return Confirmation(
        i18n.gettext("Refund %(amount)s of payment %(number)s?") % {"amount": shown, "number": payment.number},
        (
            given_back % {"amount": shown} + " " + i18n.gettext("This cannot be undone."),
            i18n.gettext("The invoices the payment paid are owed again for what is taken back from them."),
        ),
        i18n.gettext("Refund %(amount)s") % {"amount": shown},
        values,
        cancel=f"{PAYMENTS_LIST}/{payment.id}",
    )
