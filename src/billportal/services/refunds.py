"""Refunds: money given back of a payment, in the books (always) and at the gateway (a payment taken online).

Every change is made by :class:`~billportal.services.billing.Books`; this module
asks the gateway between two of its transactions, so that none waits on the gateway:

1. ``Books.refund_payment`` locks the payment and checks that the refund fits in what
   is left of it. A payment recorded offline is refunded in the books there and then.
   One taken online gets a pending refund that holds its amount, under the request's
   key (an API ``Idempotency-Key``, a dashboard form's one-time token): a retry finds it.
2. The gateway is asked, with an idempotency key derived from the request's key, so a
   retry never refunds twice; billportal's refund id goes with it (Stripe: metadata).
3. ``Books.conclude_refund`` writes the answer on the locked refund: a success puts the
   refund in the books once, whether this or the gateway's webhook came first.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection

from billportal.core.clock import local_date
from billportal.core.errors import NotFound, Refused
from billportal.services.billing import Books
from billportal.services.gateways import GatewayError, GatewayRefund, OutcomeUnknown, gateway_for
from billportal.storage import documents
from billportal.storage import payments as stored
from billportal.storage import schema as t
from billportal.storage.documents import Scope
from billportal.storage.records import Company, Payment, Refund
from billportal.storage.store import Store

GATEWAY_REFUSED: Final = "The payment gateway refused the refund; nothing was given back."
NOT_ANSWERED: Final = "The payment gateway has not answered yet; send the same request again to learn the outcome."


def request_key(kind: str, value: str | None = None) -> str:
    """The key a refund request is kept under: ``api:{Idempotency-Key}``, ``dashboard:{token}``, or a fresh one."""
    if value is None:
        return f"{kind}-once:{secrets.token_urlsafe(18)}"
    return f"{kind}:{hashlib.sha256(value.encode('utf-8')).hexdigest()[:64]}"


def gateway_key(company_id: int, key: str) -> str:
    """The gateway's idempotency key of a refund request: the same request, the same key."""
    return "bp-refund-" + hashlib.sha256(f"{company_id}:{key}".encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """What to refund: ``amount`` None for all that is left."""

    payment_id: int
    amount: int | None
    reason: str
    source: str  # dashboard, api
    key: str  # request_key(...)


class PaymentRefunds:
    """Refunds of a company's payments: in the books, and at the gateway for a payment taken online."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def payment(self, company_id: int, payment_id: int) -> Payment | None:
        found: Payment | None = await self.store.read(
            lambda conn: documents.get(conn, "payment", Scope(company_id), payment_id)
        )
        return found

    async def page(self, company_id: int, *, online: bool | None, limit: int, offset: int) -> tuple[list[Payment], int]:
        """One page of the company's payments, newest first (``online``: only those taken online, or offline)."""
        where = []
        if online is not None:
            column = t.payments.c.gateway_payment_id
            where.append(column.is_not(None) if online else column.is_(None))
        found: tuple[list[Payment], int] = await self.store.read(
            lambda conn: documents.page(conn, "payment", Scope(company_id), where=where, limit=limit, offset=offset)
        )
        return found

    async def refund(self, company: Company, wanted: RefundRequest, *, now: int) -> Refund:
        """Refund once per request key (a retry answers the same refund); Refused when it cannot be."""
        payment = await self.payment(company.id, wanted.payment_id)
        if payment is None:
            raise NotFound("no such payment")
        settings = await self.store.read(lambda conn: stored.settings(conn, company.id))
        gateway = gateway_for(settings, self.store.master_keys) if payment.gateway_payment_id else None
        if payment.gateway_payment_id and (gateway is None or payment.gateway not in (None, gateway.kind)):
            raise Refused(
                "gateway_unavailable",
                "the payment was taken by a payment gateway that is not connected now: connect it to refund",
            )
        today = local_date(now, company.time_zone).isoformat()

        def reserve(conn: Connection) -> tuple[Refund, bool]:
            return Books(conn, company.id, now).refund_payment(
                wanted.payment_id,
                amount=wanted.amount,
                reason=wanted.reason,
                source=wanted.source,
                request_key=wanted.key,
                refunded_on=today,
                online=gateway is not None,
            )

        refund, created_now = await self.store.write(reserve)
        if refund.status != "pending" or gateway is None or payment.gateway_payment_id is None:
            return _answered(refund)
        try:
            gateway_refund_id = await asyncio.to_thread(
                gateway.refund,
                gateway_payment_id=payment.gateway_payment_id,
                amount=refund.amount,
                idempotency_key=gateway_key(company.id, refund.request_key),
                reference=str(refund.id),
            )
        except OutcomeUnknown:
            raise Refused("refund_pending", NOT_ANSWERED) from None
        except GatewayError as failed:
            if not created_now:  # a retry while the first request is still at the gateway: it answers
                raise Refused("refund_pending", NOT_ANSWERED) from None
            message = f"{GATEWAY_REFUSED} ({failed})"
            refund = await self.store.write(
                lambda conn: Books(conn, company.id, now).conclude_refund(
                    refund.id, gateway_refund_id=None, message=message
                )
            )
            return _answered(refund)
        refund = await self.store.write(
            lambda conn: Books(conn, company.id, now).conclude_refund(refund.id, gateway_refund_id=gateway_refund_id)
        )
        return _answered(refund)


def _answered(refund: Refund) -> Refund:
    if refund.status == "failed":
        raise Refused("refund_failed", refund.message or GATEWAY_REFUSED)
    return refund


def record_gateway_refunds(
    conn: Connection, company: Company, gateway_payment_id: str, given: list[GatewayRefund], *, now: int
) -> None:
    """The refunds a gateway's webhook reports, in the books once each (in the webhook's transaction)."""
    books = Books(conn, company.id, now)
    today = local_date(now, company.time_zone).isoformat()
    for found in given:
        if found.status != "succeeded":
            continue
        ours = int(found.reference) if found.reference.isascii() and found.reference.isdigit() else None
        books.record_gateway_refund(
            gateway_payment_id, found.gateway_refund_id[:255], found.amount, ours=ours, refunded_on=today
        )
