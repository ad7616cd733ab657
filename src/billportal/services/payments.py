"""Online payments: a company's payment settings, customers' saved cards, and paying invoices by card.

A payment taken online is money like any other: it is recorded through
:class:`~billportal.services.billing.Books` (the one write model), once.

Paying goes in three steps, so that no database transaction waits on the gateway:

1. The pay form carries a one-time attempt token. Its submission inserts an
   attempt row under that token (unique per company); a second submission of the
   same form (a double click, a reload, a retry, another app process) finds the
   row instead and waits for its answer: it never reaches the gateway.
2. The gateway is asked, with the token as its idempotency key.
3. The outcome is written with the attempt row locked: a success records the
   payment through the billing core in the same transaction, and the attempt
   keeps the payment's id, so nothing records it a second time (the gateway
   payment id is unique on attempts and on payments too).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import Connection

from billportal.core.clock import local_date
from billportal.core.crypto import MasterKeys
from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.services import audit, mail
from billportal.services.audit import Actor
from billportal.services.billing import Books
from billportal.services.gateways import (
    DECLINED,
    GATEWAY_SEAL_PURPOSE,
    GATEWAYS,
    REFUND_EVENTS,
    CardDetails,
    Charge,
    Declined,
    Gateway,
    GatewayError,
    GatewayRefund,
    NewMethod,
    OutcomeUnknown,
    gateway_for,
    unseal_secret,
)
from billportal.services.refunds import record_gateway_refunds
from billportal.storage import documents
from billportal.storage import payments as stored
from billportal.storage.records import Company, Invoice, PaymentAttempt, PaymentSettings, SavedPaymentMethod
from billportal.storage.store import Store

SETTING_FIELDS: Final = (
    "gateway",
    "test_mode",
    "allow_partial",
    "allow_saved_methods",
    "allow_autopay",
    "autopay_retry_days",
    "publishable_key",
    "api_base",
)
MAX_SAVED_METHODS: Final = 10
MAX_SECRET_LENGTH: Final = 500  # a gateway secret (Stripe's keys are about 110 characters)
SECRET_NAMES: Final = {"secret_key": "secret key", "webhook_secret": "webhook signing secret"}
HINT_MIN_LENGTH: Final = 16  # a secret shorter than this shows no hint: its last 4 would be too much of it
UNAVAILABLE: Final = N_(
    "The payment could not be taken just now. No money was taken. Please try again in a few minutes."
)
PROCESSING: Final = N_(
    "The card company has not answered yet. Do not pay again: this page shows the result once it comes."
)
WAIT_SECONDS: Final = 15.0  # how long a duplicate submission waits for the first one's answer


def new_attempt_token() -> str:
    """The one-time token a pay form carries."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class PayPlan:
    """What the customer pays: an amount, and the part of it that goes to each invoice (the rest is credit)."""

    amount: int
    currency: str
    applications: tuple[tuple[int, int], ...]


def plan_for(
    invoices: Sequence[Invoice], currency: str, *, chosen: Sequence[int] | None = None, amount: int | None = None
) -> PayPlan:
    """The whole of the open ``invoices`` (or of the ``chosen`` ones), or ``amount`` applied oldest due first."""
    open_ones = sorted(
        (i for i in invoices if i.status == "open" and i.currency == currency and i.balance > 0),
        key=lambda i: (i.due_on or i.issued_on, i.id),
    )
    if chosen is not None:
        wanted = set(chosen)
        picked = [i for i in open_ones if i.id in wanted]
        if not picked or len(picked) != len(wanted):
            raise Refused("no_invoice_chosen", N_("Choose at least one open invoice to pay."), "invoices")
        return PayPlan(sum(i.balance for i in picked), currency, tuple((i.id, i.balance) for i in picked))
    owed = sum(i.balance for i in open_ones)
    if amount is None:
        if not owed:
            raise Refused("nothing_owed", N_("Nothing is owed on open invoices."), "what")
        return PayPlan(owed, currency, tuple((i.id, i.balance) for i in open_ones))
    if not 0 < amount <= owed:
        raise Refused("invalid_amount", N_("Enter an amount more than zero and at most what is owed."), "amount")
    applications, left = [], amount
    for invoice in open_ones:
        if left == 0:
            break
        part = min(left, invoice.balance)
        applications.append((invoice.id, part))
        left -= part
    return PayPlan(amount, currency, tuple(applications))


class Payments:
    """Online payments for every company."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- settings

    async def settings(self, company_id: int) -> PaymentSettings:
        return await self.store.read(lambda conn: stored.settings(conn, company_id))

    async def configure(
        self,
        company: Company,
        values: Mapping[str, Any],
        actor: Actor,
        *,
        now: int,
        secret_key: str | None = None,
        webhook_secret: str | None = None,
    ) -> PaymentSettings:
        """Change the company's payment settings; secrets are sealed, and the test gateway needs test mode."""
        unknown = set(values) - set(SETTING_FIELDS)
        if unknown:
            raise Refused("unknown_field", f"not payment settings: {', '.join(sorted(unknown))}")
        changes = dict(values)
        if "gateway" in changes and changes["gateway"] not in GATEWAYS:
            raise Refused("invalid_field", f"gateway must be one of {', '.join(GATEWAYS)}", "gateway")
        base = changes.get("api_base", "")
        if base and not _http_url(base):
            raise Refused(
                "invalid_field", "the API base URL is an http(s) URL, such as http://127.0.0.1:8420", "api_base"
            )
        if "autopay_retry_days" in changes:
            changes["autopay_retry_days"] = retry_days_text(changes["autopay_retry_days"])
        secret_key, webhook_secret = (
            secret_text(secret_key, "secret_key"),
            secret_text(webhook_secret, "webhook_secret"),
        )
        keys = self.store.master_keys
        for column, secret in (("secret_key_sealed", secret_key), ("webhook_secret_sealed", webhook_secret)):
            if secret is not None:
                changes[column] = keys.seal(secret.encode("utf-8"), GATEWAY_SEAL_PURPOSE, company.id).as_text()

        def change(conn: Connection) -> PaymentSettings:
            current = stored.settings(conn, company.id)
            gateway = changes.get("gateway", current.gateway)
            test_mode = changes.get("test_mode", current.test_mode)
            if gateway == "test" and not test_mode:
                raise Refused("test_mode_required", "The test gateway can only be used in test mode.", "gateway")
            stored.save_settings(conn, company.id, changes, now=now)
            named = sorted(name for name in changes if name in SETTING_FIELDS) + [
                name.removesuffix("_sealed") for name in changes if name.endswith("_sealed")
            ]
            audit.record_in(conn, actor, "payments.configured", now, company_ids=[company.id], detail=", ".join(named))
            return stored.settings(conn, company.id)

        return await self.store.write(change)

    # -- saved payment methods

    async def methods(self, company_id: int, customer_id: int) -> list[SavedPaymentMethod]:
        return await self.store.read(lambda conn: stored.methods(conn, company_id, customer_id))

    async def add_method(
        self, settings: PaymentSettings, customer_id: int, method: NewMethod, *, now: int
    ) -> SavedPaymentMethod:
        """Save a card for later (set up at the gateway, not charged); the first one becomes the default."""
        gateway = self._gateway(settings)
        if not settings.allow_saved_methods:
            raise Refused("saved_methods_off", N_("Saving cards is not offered here."))
        company_id = settings.company_id
        try:
            customer = await self.gateway_customer(gateway, company_id, customer_id, now=now)
            made = await asyncio.to_thread(
                gateway.set_up, customer_id=customer_id, gateway_customer=customer, method=method
            )
        except Declined as declined:
            raise Refused("card_declined", str(declined)) from None
        except GatewayError:
            raise Refused("gateway_unavailable", UNAVAILABLE) from None

        def save(conn: Connection) -> SavedPaymentMethod:
            # One save at a time per customer (the customer's row locked), so that two cards saved at
            # once cannot both become the default, nor pass the limit together.
            documents.lock(conn, "customer", company_id, customer_id)
            existing = stored.methods(conn, company_id, customer_id)
            if len(existing) >= MAX_SAVED_METHODS:
                raise Refused("too_many_methods", f"Up to {MAX_SAVED_METHODS} cards can be saved; remove one first.")
            card = made.card
            values = {
                "company_id": company_id,
                "customer_id": customer_id,
                "gateway": gateway.kind,
                "gateway_ref": made.gateway_ref,
                "brand": card.brand,
                "last4": card.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "is_default": not existing,
                "created_at": now,
            }
            method_id = stored.add_method(conn, values)
            found = stored.method(conn, company_id, customer_id, method_id)
            assert found is not None
            return found

        return await self.store.write(save)

    async def browser_setup(self, settings: PaymentSettings, customer_id: int) -> str:
        """The secret the gateway's script sets a card up with on this page view ("": none now, or not needed)."""
        gateway = gateway_for(settings, self.store.master_keys)
        if gateway is None or not gateway.collects_cards_itself:
            return ""
        try:
            return await asyncio.to_thread(gateway.browser_setup, customer_id=customer_id)
        except GatewayError:
            return ""

    async def gateway_customer(self, gateway: Gateway, company_id: int, customer_id: int, *, now: int) -> str:
        """The gateway's customer for this customer, made on first need and kept (GatewayError if it cannot be made).

        Two requests (two processes) that both need it first both ask the gateway with one
        idempotency key, derived from the company and the customer, so the gateway makes one
        customer; the table's key keeps one row, and each request uses the row that was kept.
        """
        kind = gateway.kind
        found = await self.store.read(lambda conn: stored.gateway_customer(conn, company_id, customer_id, kind))
        if found is not None:
            return found
        made = await asyncio.to_thread(
            gateway.create_customer,
            company_id=company_id,
            customer_id=customer_id,
            idempotency_key=f"billportal-customer-{company_id}-{customer_id}",
        )
        values = {
            "company_id": company_id,
            "customer_id": customer_id,
            "gateway": kind,
            "gateway_customer_id": made,
            "created_at": now,
        }
        return await self.store.write(lambda conn: stored.keep_gateway_customer(conn, values))

    async def make_default(self, company_id: int, customer_id: int, method_id: int) -> bool:
        return await self.store.write(lambda conn: stored.make_default(conn, company_id, customer_id, method_id))

    async def remove_method(self, company_id: int, customer_id: int, method_id: int) -> bool:
        """Forget a saved card (False: it is not this customer's)."""
        removed = await self.store.write(lambda conn: stored.remove_method(conn, company_id, customer_id, method_id))
        return removed is not None

    # -- paying

    def _gateway(self, settings: PaymentSettings) -> Gateway:
        gateway = gateway_for(settings, self.store.master_keys)
        if gateway is None:
            raise Refused("payments_off", N_("Paying online is not available here."))
        return gateway

    async def attempt(self, company_id: int, customer_id: int, token: str) -> PaymentAttempt | None:
        """The customer's attempt under ``token`` (None if there is none, or it is another customer's)."""
        found = await self.store.read(lambda conn: stored.attempt(conn, company_id, token))
        return found if found is not None and found.customer_id == customer_id else None

    async def pay(
        self,
        company: Company,
        settings: PaymentSettings,
        customer_id: int,
        *,
        token: str,
        plan: PayPlan,
        method: NewMethod | int,
        now: int,
    ) -> PaymentAttempt:
        """Pay ``plan`` with a new card or the saved method with id ``method``: at most once per ``token``.

        A token used before (by this customer) answers what its first use answered, waiting for it if need be.
        """
        gateway = self._gateway(settings)
        earlier = await self.answer(company.id, customer_id, token)
        if earlier is not None:
            return earlier
        saved = None
        if isinstance(method, int):
            saved = await self.store.read(lambda conn: stored.method(conn, company.id, customer_id, method))
            if saved is None or saved.gateway != gateway.kind:
                raise Refused("no_such_method", N_("Choose one of your saved cards, or enter a new card."), "method")
        values = {
            "company_id": company.id,
            "customer_id": customer_id,
            "token": token,
            "status": "pending",
            "gateway": gateway.kind,
            "currency": plan.currency,
            "amount": plan.amount,
            "applications": json.dumps([list(pair) for pair in plan.applications]),
            "created_at": now,
            "updated_at": now,
        }
        if not await self.store.write(lambda conn: stored.claim_attempt(conn, values)):
            return await self._settled(company.id, token, None)
        try:
            if saved is not None:
                charge = await asyncio.to_thread(
                    gateway.charge_saved,
                    customer_id=customer_id,
                    method_ref=saved.gateway_ref,
                    amount=plan.amount,
                    currency=plan.currency,
                    idempotency_key=token,
                )
                card = CardDetails(saved.brand, saved.last4, saved.exp_month, saved.exp_year)
                charge = replace(charge, card=charge.card or card)
            else:
                assert not isinstance(method, int)
                customer = await self.gateway_customer(gateway, company.id, customer_id, now=now)
                charge = await asyncio.to_thread(
                    gateway.confirm_new,
                    customer_id=customer_id,
                    gateway_customer=customer,
                    method=method,
                    amount=plan.amount,
                    currency=plan.currency,
                    idempotency_key=token,
                )
        except Declined as declined:
            charge = Charge("", "declined", None, str(declined))
        except OutcomeUnknown:
            # Money may have moved: the attempt stays pending until the gateway's webhook says what happened.
            charge = Charge("", "pending", None, PROCESSING)
        except GatewayError:
            charge = Charge("", "failed", None, UNAVAILABLE)
        return await self.store.write(lambda conn: self._conclude(conn, company, token, charge, now))

    async def webhook(
        self, company: Company, settings: PaymentSettings, payload: bytes, signature: str, *, now: int
    ) -> bool:
        """Process a gateway's webhook once (False: its signature does not verify).

        The event id goes in with the work it causes, in one transaction: a second delivery
        changes nothing. A payment's success is recorded from here or from the confirmation,
        whichever comes first (both write on the locked attempt); a late failure after a
        success, or any event about an attempt already answered, changes nothing either.
        """
        gateway = gateway_for(settings, self.store.master_keys)
        if gateway is None:
            return False
        try:
            event = gateway.verify_webhook(payload, signature)
        except GatewayError:
            return False
        outcome = {"payment_intent.succeeded": "succeeded", "payment_intent.payment_failed": "declined"}
        given: list[GatewayRefund] = []
        if event.kind in REFUND_EVENTS and event.gateway_payment_id:
            try:  # how the payment's refunds stand now, asked before the transaction (none waits on the gateway)
                given = await asyncio.to_thread(gateway.refunds_of, event.gateway_payment_id)
            except GatewayError:
                return False  # not processed: the gateway sends it again

        def process(conn: Connection) -> None:
            if not stored.mark_event(conn, company.id, event.event_id[:255], event.kind[:64], now=now):
                return  # delivered before
            if given:
                record_gateway_refunds(conn, company, event.gateway_payment_id[:255], given, now=now)
            status = outcome.get(event.kind)
            if status is None or not event.attempt_token:
                return
            if stored.attempt(conn, company.id, event.attempt_token[:64]) is None:
                return
            message = "" if status == "succeeded" else DECLINED
            charge = Charge(event.gateway_payment_id, status, None, message)
            self._conclude(conn, company, event.attempt_token[:64], charge, now)

        await self.store.write(process)
        return True

    async def answer(self, company_id: int, customer_id: int, token: str) -> PaymentAttempt | None:
        """The answer to an attempt made with ``token`` before, once it has one (None: the token is unused).

        A submission still at the gateway is waited for a while; after that it is returned still pending.
        """
        found = await self.store.read(lambda conn: stored.attempt(conn, company_id, token))
        if found is None or found.customer_id != customer_id:
            return found  # another customer's is not waited for; /pay/{token} shows them nothing
        return await self._settled(company_id, token, found)

    async def _settled(self, company_id: int, token: str, found: PaymentAttempt | None) -> PaymentAttempt:
        """The attempt's answer once it has one (or as it stands after a while: still pending)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            if found is not None and (found.status != "pending" or loop.time() >= deadline):
                return found
            await asyncio.sleep(0.05)
            found = await self.store.read(lambda conn: stored.attempt(conn, company_id, token))

    def _conclude(self, conn: Connection, company: Company, token: str, charge: Charge, now: int) -> PaymentAttempt:
        """Write the gateway's answer on the locked attempt; a success is recorded as a payment, once."""
        attempt = stored.attempt(conn, company.id, token, lock=True)
        assert attempt is not None
        if attempt.status != "pending":
            return attempt  # answered already (a webhook, or a reconciliation)
        changes: dict[str, Any] = {"updated_at": now, "message": charge.message[:300]}
        if charge.gateway_payment_id:
            changes["gateway_payment_id"] = charge.gateway_payment_id
        if charge.card is not None:
            changes["method_detail"] = charge.card.label
        if charge.status == "succeeded":
            changes["status"] = "succeeded"
            changes["payment_id"] = record_online_payment(
                conn,
                company,
                attempt,
                gateway_payment_id=charge.gateway_payment_id,
                label=changes.get("method_detail", ""),
                now=now,
            )
        elif charge.status in ("declined", "failed"):
            changes["status"] = charge.status
        stored.update_attempt(conn, attempt.id, changes)
        found = stored.attempt(conn, company.id, token)
        assert found is not None
        return found


@dataclass(frozen=True, slots=True)
class AutopayReport:
    """What one AutoPay run did."""

    charged: int = 0
    declined: int = 0
    ran: bool = True  # False: another process was running it


class AutoPay:
    """AutoPay: enrolled customers' open invoices charged to their default card on the due date, retried on a schedule.

    Each charge is a pay attempt whose token names the invoice and the try
    (``autopay-{invoice}-{try}``): two runs at once claim the same token, so an invoice is
    charged at most once per try even then; and one process runs at a time anyway
    (:meth:`Store.alone`, a PostgreSQL advisory lock).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.payments = Payments(store)

    async def enrolled(self, company_id: int, customer_id: int) -> bool:
        return await self.store.read(lambda conn: stored.autopay_enrolled(conn, company_id, customer_id))

    async def set(self, settings: PaymentSettings, customer_id: int, *, on: bool, now: int) -> None:
        if on and not (settings.online and settings.allow_autopay):
            raise Refused("autopay_off", N_("AutoPay is not offered here."))
        company_id = settings.company_id
        await self.store.write(lambda conn: stored.set_autopay(conn, company_id, customer_id, on=on, now=now))

    async def failures(self, company_id: int, customer_id: int) -> list[PaymentAttempt]:
        """The customer's AutoPay charges that failed, newest first."""
        tried = await self.store.read(lambda conn: stored.autopay_attempts(conn, company_id, customer_id))
        return [a for a in reversed(tried) if a.status in ("declined", "failed")]

    async def run(self, *, now: int) -> AutopayReport:
        """Charge what is due today in every company that allows AutoPay (``now``: the injected clock)."""
        async with self.store.alone("autopay") as alone:
            if not alone:
                return AutopayReport(ran=False)
            charged = declined = 0
            for company_id in await self.store.read(stored.autopay_companies):
                for attempt in await self._company(company_id, now):
                    charged += attempt.status == "succeeded"
                    declined += attempt.status in ("declined", "failed")
            return AutopayReport(charged, declined)

    async def _company(self, company_id: int, now: int) -> list[PaymentAttempt]:
        username = await self.store.read(lambda conn: stored.company_username(conn, company_id))
        company = await self.store.company(username) if username else None
        settings = await self.payments.settings(company_id)
        if company is None or gateway_for(settings, self.store.master_keys) is None:
            return []
        today = local_date(now, company.time_zone)
        retries = [int(d) for d in settings.autopay_retry_days.split(",") if d]
        done = []
        for customer_id in await self.store.read(lambda conn: stored.autopay_customers(conn, company_id)):
            methods = await self.payments.methods(company_id, customer_id)
            if not methods:
                continue
            await self.store.write(
                functools.partial(
                    mail.autopay_upcoming, company_id=company_id, customer_id=customer_id, today=today, now=now
                )
            )
            tried, invoices = await self.store.read(
                functools.partial(_autopay_state, company_id=company_id, customer_id=customer_id, today=today)
            )
            for invoice in invoices:
                mine = [a for a in tried if a.token.startswith(f"{stored.AUTOPAY_PREFIX}{invoice.id}-")]
                if any(a.status in ("succeeded", "pending") for a in mine) or len(mine) > len(retries):
                    continue
                if mine and today < local_date(mine[-1].created_at, company.time_zone) + timedelta(
                    days=retries[len(mine) - 1]
                ):
                    continue
                plan = PayPlan(invoice.balance, invoice.currency, ((invoice.id, invoice.balance),))
                token = f"{stored.AUTOPAY_PREFIX}{invoice.id}-{len(mine)}"
                attempt = await self.payments.pay(
                    company, settings, customer_id, token=token, plan=plan, method=methods[0].id, now=now
                )
                if attempt.status in ("declined", "failed"):
                    await self.store.write(
                        functools.partial(
                            mail.autopay_failed,
                            company_id=company_id,
                            customer_id=customer_id,
                            invoice_id=invoice.id,
                            now=now,
                        )
                    )
                done.append(attempt)
        return done


def _autopay_state(
    conn: Connection, *, company_id: int, customer_id: int, today: date
) -> tuple[list[PaymentAttempt], list[Invoice]]:
    """A customer's AutoPay charges so far, and their invoices due by ``today``."""
    tried = stored.autopay_attempts(conn, company_id, customer_id)
    return tried, documents.due_invoices(conn, company_id, customer_id, today.isoformat())


def record_online_payment(
    conn: Connection, company: Company, attempt: PaymentAttempt, *, gateway_payment_id: str, label: str, now: int
) -> int:
    """Record a payment the gateway took, through the billing core; the payment's id.

    Invoices paid meanwhile (by a check the company recorded, say) take what they
    still owe; the rest of the money stays with the customer as account credit.
    """
    wanted = sorted((int(i), int(a)) for i, a in json.loads(attempt.applications))
    applications = []
    for invoice_id, amount in wanted:
        row = documents.lock(conn, "invoice", company.id, invoice_id)
        if row is None or row.status != "open" or row.customer_id != attempt.customer_id:
            continue
        if row.currency == attempt.currency and row.balance > 0:
            applications.append({"invoice_id": invoice_id, "amount": min(amount, row.balance)})
    values = {
        "customer_id": attempt.customer_id,
        "currency": attempt.currency,
        "amount": attempt.amount,
        "received_on": local_date(now, company.time_zone).isoformat(),
        "method": "card",
        "method_detail": label[:64],
        "gateway_payment_id": gateway_payment_id,
        "gateway": attempt.gateway,
        "reference": gateway_payment_id[:100],
        "applications": applications,
    }
    return Books(conn, company.id, now).record_payment(values).id


def secret_text(value: str | None, field: str) -> str | None:
    """A gateway secret as typed, trimmed (None: unchanged), or Refused: visible ASCII, as gateways write them.

    The message never quotes the value.
    """
    if value is None:
        return None
    secret = value.strip()
    if not 0 < len(secret) <= MAX_SECRET_LENGTH or not all("!" <= ch <= "~" for ch in secret):
        name = SECRET_NAMES[field]
        raise Refused(
            "invalid_field",
            f"the {name} is the text the gateway shows, at most {MAX_SECRET_LENGTH} characters, without spaces",
            field,
        )
    return secret


def shown_settings(settings: PaymentSettings, master_keys: MasterKeys) -> dict[str, Any]:
    """The settings as the CLI and the API show them: each secret only as set or not, and its hint."""
    return {
        **{name: getattr(settings, name) for name in SETTING_FIELDS},
        "secret_key_set": bool(settings.secret_key_sealed),
        "secret_key_hint": secret_hint(settings, master_keys, "secret_key"),
        "webhook_secret_set": bool(settings.webhook_secret_sealed),
        "webhook_secret_hint": secret_hint(settings, master_keys, "webhook_secret"),
    }


def secret_hint(settings: PaymentSettings, master_keys: MasterKeys, field: str) -> str | None:
    """What may be shown of a stored secret: its last 4 characters ("…abcd"), or None (not set, or too short)."""
    sealed = settings.secret_key_sealed if field == "secret_key" else settings.webhook_secret_sealed
    if not sealed:
        return None
    secret = unseal_secret(master_keys, sealed, settings.company_id)
    return "…" + secret[-4:] if len(secret) >= HINT_MIN_LENGTH else None


def retry_days_text(value: Any) -> str:
    """The AutoPay retry schedule, "1,3,7": days after a failed charge, increasing, at most 5 retries."""
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    if not all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts) or len(parts) > 5:
        raise Refused("invalid_field", "the retry schedule is up to 5 day counts, such as 1,3,7", "autopay_retry_days")
    days = [int(p) for p in parts]
    if any(b <= a for a, b in itertools.pairwise(days)) or any(d < 1 for d in days):
        raise Refused("invalid_field", "retry days must increase, from 1", "autopay_retry_days")
    return ",".join(str(d) for d in days)


def _http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment
