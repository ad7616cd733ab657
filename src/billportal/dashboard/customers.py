"""Customers in the dashboard: the list (search, what they owe, keyset paging) and one customer's page."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from billportal.core.clock import local_date
from billportal.dashboard.auth import AdminVisit, admin
from billportal.dashboard.views import Dashboard
from billportal.services.payments import AutoPay
from billportal.services.statements import method_label
from billportal.storage.documents import Scope
from billportal.storage.records import Company
from billportal.web.errors import error_page

CUSTOMERS: Final = "/customers"
PAGE_SIZE: Final = 25
SEARCH_LIMIT: Final = 100  # characters of a search kept
OWING: Final = {"": "All", "balance": "With a balance", "past_due": "Past due"}
RECENT: Final = 10  # documents of each kind on a customer's page


def _after(request: Request) -> int | None:
    raw = request.query_params.get("after", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 20 else None


class CustomerPages(Dashboard):
    """The customers list and a customer's page (read-only: customers change through the API and the CLI)."""

    @admin(area="billing")
    async def customers_list(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        search = " ".join(request.query_params.get("q", "").split())[:SEARCH_LIMIT]
        owing = request.query_params.get("owing", "")
        owing = owing if owing in OWING else ""
        after = _after(request)
        today = local_date(self.context.clock(), company.time_zone).isoformat()
        rows, more = await self.context.billing.customer_page(
            company.id, limit=PAGE_SIZE, after_id=after, search=search, owing=owing, today=today
        )
        return self._page(
            request,
            visit,
            "dashboard/customers.html",
            title="Customers",
            section="customers",
            rows=rows,
            more=more,
            next_after=rows[-1].customer.id if rows and more else None,
            first_page=after is None,
            search=search,
            owing=owing,
            owing_choices=OWING,
        )

    @admin(area="billing")
    async def customer_detail(self, request: Request, visit: AdminVisit, company: Company) -> Response:
        customer_id: int = request.path_params["customer_id"]
        billing = self.context.billing
        customer = await billing.customer(company.id, customer_id)
        if customer is None:
            return error_page(404, "There is no such customer.")
        today = local_date(self.context.clock(), company.time_zone).isoformat()
        scope = Scope(company.id, customer.id)
        balance = await billing.account_balance(company.id, customer.id, customer.currency, today=today)
        invoices, invoice_count = await billing.invoices(scope, limit=RECENT)
        payments, payment_count = await billing.documents("payment", scope, limit=RECENT)
        return self._page(
            request,
            visit,
            "dashboard/customer.html",
            title=customer.name or f"Customer {customer.id}",
            section="customers",
            customer=customer,
            balance=balance,
            invoices=invoices,
            invoice_count=invoice_count,
            payments=payments,
            payment_count=payment_count,
            autopay=await AutoPay(self.context.store).enrolled(company.id, customer.id),
            method_label=method_label,
            bounce=await self.context.mail.bounce(company.id, customer.email),
        )
