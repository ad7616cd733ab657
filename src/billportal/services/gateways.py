"""Payment gateways: a small interface split by capability, and the built-in test gateway.

The portal and :mod:`billportal.services.payments` see a gateway only through
these protocols, so a second gateway (Braintree, Adyen, GoCardless) is one more
class here and one more ``gateway`` value, not a change to the portal. Gateway
calls are blocking (the official SDKs are): callers run them off the event loop.

The built-in :class:`TestGateway` takes the usual test card numbers and nothing
else; it exists only for a company in test mode (a database constraint holds it
too), and card numbers typed for it are never stored or logged.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from billportal.core.crypto import MasterKeys, Sealed
from billportal.core.i18n import N_
from billportal.core.lazy import lazy_import
from billportal.storage.records import PaymentSettings, card_label

if TYPE_CHECKING:
    import stripe
else:
    stripe = lazy_import("stripe")  # about 20 MB, loaded by the first Stripe call only

GATEWAYS: Final = ("none", "test", "stripe")
GATEWAY_SEAL_PURPOSE: Final = "gateway-secret"  # what core/crypto.py binds a sealed gateway secret to


class GatewayError(Exception):
    """The gateway could not be reached or refused the request for a reason that is not the card's."""


class OutcomeUnknown(GatewayError):
    """The gateway was asked to take money and did not answer: it may have. Only its webhook (or status) tells."""


class Declined(Exception):
    """The card was declined; the message is one a customer can read."""


@dataclass(frozen=True, slots=True)
class CardDetails:
    """What may be shown of a card: brand, last 4 digits, expiry."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int

    @property
    def label(self) -> str:
        return card_label(self.brand, self.last4)


@dataclass(frozen=True, slots=True)
class CardEntry:
    """A card as typed into the test gateway's form: never stored, never logged (not even by repr)."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class GatewayToken:
    """A payment method the gateway's own script collected in the browser (Stripe: ``pm_...``)."""

    value: str


NewMethod = CardEntry | GatewayToken


@dataclass(frozen=True, slots=True)
class Charge:
    """The outcome of a payment at the gateway."""

    gateway_payment_id: str
    status: str  # succeeded, declined, pending
    card: CardDetails | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class SetUp:
    """A payment method saved at the gateway (set up, not charged)."""

    gateway_ref: str
    card: CardDetails


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A verified webhook event: its id (processed once), kind, the payment it is about and that payment's attempt."""

    event_id: str
    kind: str
    gateway_payment_id: str
    attempt_token: str = ""
    message: str = ""


class ChargesSavedMethods(Protocol):
    def charge_saved(
        self, *, customer_id: int, method_ref: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        """Charge a saved method, off session (AutoPay, or the customer choosing a saved card)."""
        ...


class KeepsCustomers(Protocol):
    def create_customer(self, *, company_id: int, customer_id: int, idempotency_key: str) -> str:
        """Make the gateway's customer for one of the company's customers; its id (Stripe: ``cus_...``).

        The same ``idempotency_key`` makes one customer, however many requests send it at once.
        """
        ...


class ConfirmsPayments(Protocol):
    def confirm_new(
        self,
        *,
        customer_id: int,
        gateway_customer: str,
        method: NewMethod,
        amount: int,
        currency: str,
        idempotency_key: str,
    ) -> Charge:
        """Take a payment with a new card for ``gateway_customer``; one ``idempotency_key`` never charges twice."""
        ...


class SetsUpMethods(Protocol):
    def set_up(self, *, customer_id: int, gateway_customer: str, method: NewMethod) -> SetUp:
        """Save a card for later on ``gateway_customer``, without charging it (Declined if the card is refused)."""
        ...

    def browser_setup(self, *, customer_id: int) -> str:
        """For a gateway whose script collects the card: the secret with which that script sets it up.

        Stripe: the client secret of a new SetupIntent, which Stripe.js confirms with the card
        (``confirmCardSetup``), giving the PaymentMethod id the form then posts.
        """
        ...


@dataclass(frozen=True, slots=True)
class GatewayRefund:
    """A refund as the gateway keeps it; ``reference`` is billportal's refund id when billportal asked for it."""

    gateway_refund_id: str
    amount: int
    status: str  # succeeded, pending, failed, canceled
    reference: str = ""


class Refunds(Protocol):
    def refund(self, *, gateway_payment_id: str, amount: int, idempotency_key: str, reference: str = "") -> str:
        """Give back some or all of a payment; the gateway's refund id. The same key never refunds twice."""
        ...

    def refunds_of(self, gateway_payment_id: str) -> list[GatewayRefund]:
        """Every refund of a payment at the gateway (a webhook says one changed; this says how it stands)."""
        ...


class VerifiesWebhooks(Protocol):
    def verify_webhook(self, payload: bytes, signature: str) -> GatewayEvent:
        """The event a webhook carries, if its signature is good (GatewayError otherwise)."""
        ...


class FetchesStatus(Protocol):
    def fetch_status(self, gateway_payment_id: str) -> Charge:
        """Where a payment stands at the gateway now (for reconciling one whose answer was lost)."""
        ...


class Gateway(
    KeepsCustomers,
    ChargesSavedMethods,
    ConfirmsPayments,
    SetsUpMethods,
    Refunds,
    VerifiesWebhooks,
    FetchesStatus,
    Protocol,
):
    """Every capability a card gateway offers billportal."""

    kind: str
    test_mode: bool
    collects_cards_itself: bool  # True: card numbers go to the gateway's own script, never to billportal


# -- the built-in test gateway --------------------------------------------------------------------

# Test card number -> (brand, what charging it does). Setting up 4000000000000341 succeeds; charging it fails.
TEST_CARDS: Final = {
    "4242424242424242": ("visa", "succeeds"),
    "5555555555554444": ("mastercard", "succeeds"),
    "4000000000000002": ("visa", "declined"),
    "4000000000000341": ("visa", "declined_later"),
}
DECLINED: Final = N_("Your card was declined. No money was taken. Try another card, or ask your bank why.")
NOT_A_TEST_CARD: Final = N_("Test mode takes only test card numbers, such as 4242 4242 4242 4242.")


class TestGateway:
    """A gateway that charges nobody: test card numbers decide the outcome."""

    kind = "test"
    test_mode = True
    collects_cards_itself = False
    __test__ = False  # not a pytest class

    def __init__(self, company_id: int) -> None:
        self.company_id = company_id

    def _id(self, prefix: str, key: str) -> str:
        """The same payment id for the same idempotency key, as a real gateway answers a retried request."""
        return f"{prefix}_{hashlib.sha256(f'{self.company_id}:{key}'.encode()).hexdigest()[:24]}"

    @staticmethod
    def _card(method: NewMethod) -> tuple[CardDetails, str]:
        if not isinstance(method, CardEntry):
            raise GatewayError("the test gateway takes a card typed into the portal")
        known = TEST_CARDS.get(method.number)
        if known is None:
            raise Declined(NOT_A_TEST_CARD)
        brand, outcome = known
        return CardDetails(brand, method.number[-4:], method.exp_month, method.exp_year), outcome

    def create_customer(self, *, company_id: int, customer_id: int, idempotency_key: str) -> str:
        return self._id("test_cus", idempotency_key)

    def confirm_new(
        self,
        *,
        customer_id: int,
        gateway_customer: str,
        method: NewMethod,
        amount: int,
        currency: str,
        idempotency_key: str,
    ) -> Charge:
        card, outcome = self._card(method)
        if outcome != "succeeds":
            return Charge(self._id("test_pi", idempotency_key), "declined", card, DECLINED)
        return Charge(self._id("test_pi", idempotency_key), "succeeded", card)

    def charge_saved(
        self, *, customer_id: int, method_ref: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        payment_id = self._id("test_pi", idempotency_key)
        if method_ref.startswith("test_pm_declined_"):
            return Charge(payment_id, "declined", None, DECLINED)
        return Charge(payment_id, "succeeded")

    def set_up(self, *, customer_id: int, gateway_customer: str, method: NewMethod) -> SetUp:
        card, outcome = self._card(method)
        if outcome == "declined":
            raise Declined(DECLINED)
        marker = "declined_" if outcome == "declined_later" else ""
        return SetUp(f"test_pm_{marker}{secrets.token_hex(8)}", card)

    def browser_setup(self, *, customer_id: int) -> str:
        raise GatewayError("the test gateway's card is typed into the portal")

    def refund(self, *, gateway_payment_id: str, amount: int, idempotency_key: str, reference: str = "") -> str:
        return self._id("test_re", idempotency_key)

    def refunds_of(self, gateway_payment_id: str) -> list[GatewayRefund]:
        return []  # the test gateway has no dashboard of its own: every refund is billportal's

    def verify_webhook(self, payload: bytes, signature: str) -> GatewayEvent:
        raise GatewayError("the test gateway sends no webhooks")

    def fetch_status(self, gateway_payment_id: str) -> Charge:
        return Charge(gateway_payment_id, "succeeded")


# -- Stripe ---------------------------------------------------------------------------------------

STRIPE_JS: Final = "https://js.stripe.com/v3/"
STRIPE_EVENTS: Final = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.refund.updated",
)
REFUND_EVENTS: Final = ("charge.refunded", "charge.refund.updated")
CUSTOMER_RETRY_WAITS: Final = (0.2, 0.5, 1.0, 2.0)  # seconds before each new try of a customer's creation


class StripeGateway:
    """Stripe, through its official package: PaymentIntents to pay, SetupIntents to save a card.

    Card numbers never reach billportal: Stripe's script in the browser confirms a SetupIntent
    made for the page (:meth:`browser_setup`) with the card, and the form sends the resulting
    PaymentMethod (``pm_...``) instead. Each customer of a company has one Stripe customer (kept by
    :mod:`billportal.services.payments` in ``gateway_customers``): saved cards are attached to it and
    payments name it. A saved method's reference is
    ``{Stripe customer}:{PaymentMethod}``. A new ``StripeClient`` is made for each call, so
    that no key or API base of one company is ever used for another.
    """

    kind = "stripe"
    collects_cards_itself = True

    def __init__(self, secret_key: str, *, webhook_secret: str = "", api_base: str = "", test_mode: bool) -> None:
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self.api_base = api_base
        self.test_mode = test_mode

    def __repr__(self) -> str:
        return f"StripeGateway(api_base={self.api_base!r})"

    def _client(self) -> Any:
        bases: Any = {"api": self.api_base} if self.api_base else {}
        return stripe.StripeClient(self._secret_key, base_addresses=bases).v1

    @staticmethod
    def _token(method: NewMethod) -> str:
        if not isinstance(method, GatewayToken):
            raise GatewayError("Stripe takes the PaymentMethod its script made in the browser")
        return method.value

    @staticmethod
    def _card(client: Any, payment_method: str) -> CardDetails:
        card = client.payment_methods.retrieve(payment_method).card
        return CardDetails(str(card.brand), str(card.last4), int(card.exp_month), int(card.exp_year))

    def create_customer(self, *, company_id: int, customer_id: int, idempotency_key: str) -> str:
        """A Stripe customer; two requests at once with one idempotency key get the same one.

        Stripe answers a request whose key another request is still using with an
        IdempotencyError: that one is asked again, shortly, and then gets the first one's answer.
        """
        metadata = {"billportal_company": str(company_id), "billportal_customer": str(customer_id)}
        for wait in (*CUSTOMER_RETRY_WAITS, None):
            try:
                customer = self._client().customers.create(
                    params={"metadata": metadata}, options={"idempotency_key": idempotency_key}
                )
            except stripe.IdempotencyError:
                if wait is None:
                    raise GatewayError("IdempotencyError") from None
                time.sleep(wait)
                continue
            except stripe.StripeError as failed:
                raise GatewayError(type(failed).__name__) from None
            return str(customer.id)
        raise AssertionError("unreachable")

    def _charge(self, params: dict[str, Any], idempotency_key: str) -> Charge:
        client = self._client()
        try:
            intent = client.payment_intents.create(
                params={"payment_method_types": ["card"], "confirm": True, **params},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as declined:
            raise Declined(DECLINED) from declined
        except (stripe.APIConnectionError, stripe.APIError) as unknown:
            raise OutcomeUnknown(type(unknown).__name__) from None
        except stripe.StripeError as failed:
            raise GatewayError(type(failed).__name__) from None
        status = {"succeeded": "succeeded", "requires_payment_method": "declined"}.get(intent.status, "pending")
        card = self._card(client, params["payment_method"]) if status == "succeeded" else None
        return Charge(str(intent.id), status, card, DECLINED if status == "declined" else "")

    def confirm_new(
        self,
        *,
        customer_id: int,
        gateway_customer: str,
        method: NewMethod,
        amount: int,
        currency: str,
        idempotency_key: str,
    ) -> Charge:
        payment_method = self._token(method)
        try:
            # Attached to the customer first: a card Stripe declines is refused here.
            self._client().payment_methods.attach(payment_method, params={"customer": gateway_customer})
        except stripe.CardError as declined:
            raise Declined(DECLINED) from declined
        except stripe.StripeError as failed:
            raise GatewayError(type(failed).__name__) from None
        params = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": gateway_customer,
            "payment_method": payment_method,
            "metadata": {"billportal_attempt": idempotency_key},
        }
        return self._charge(params, idempotency_key)

    def charge_saved(
        self, *, customer_id: int, method_ref: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        stripe_customer, _, payment_method = method_ref.partition(":")
        params = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": stripe_customer,
            "payment_method": payment_method,
            "off_session": True,
            "metadata": {"billportal_attempt": idempotency_key},
        }
        return self._charge(params, idempotency_key)

    def set_up(self, *, customer_id: int, gateway_customer: str, method: NewMethod) -> SetUp:
        payment_method = self._token(method)
        client = self._client()
        stripe_customer = gateway_customer
        try:
            # Attached first: a card Stripe declines is refused here.
            client.payment_methods.attach(payment_method, params={"customer": stripe_customer})
            intent = client.setup_intents.create(
                params={"customer": stripe_customer, "payment_method_types": ["card"], "usage": "off_session"}
            )
            intent = client.setup_intents.confirm(intent.id, params={"payment_method": payment_method})
        except stripe.CardError as declined:
            raise Declined(DECLINED) from declined
        except stripe.StripeError as failed:
            raise GatewayError(type(failed).__name__) from None
        if intent.status != "succeeded":
            raise Declined(DECLINED)
        return SetUp(f"{stripe_customer}:{payment_method}", self._card(client, payment_method))

    def browser_setup(self, *, customer_id: int) -> str:
        try:
            intent = self._client().setup_intents.create(
                params={
                    "payment_method_types": ["card"],
                    "usage": "off_session",
                    "metadata": {"billportal_customer": str(customer_id)},
                }
            )
        except stripe.StripeError as failed:
            raise GatewayError(type(failed).__name__) from None
        return str(intent.client_secret)

    def refund(self, *, gateway_payment_id: str, amount: int, idempotency_key: str, reference: str = "") -> str:
        params: dict[str, Any] = {"payment_intent": gateway_payment_id, "amount": amount}
        if reference:
            params["metadata"] = {"billportal_refund": reference}
        try:
            refund = self._client().refunds.create(params=params, options={"idempotency_key": idempotency_key})
        except (stripe.APIConnectionError, stripe.APIError) as unknown:
            raise OutcomeUnknown(type(unknown).__name__) from None
        except stripe.StripeError as failed:
            raise GatewayError(_stripe_message(failed)) from None
        return str(refund.id)

    def refunds_of(self, gateway_payment_id: str) -> list[GatewayRefund]:
        try:
            found = self._client().refunds.list(params={"payment_intent": gateway_payment_id, "limit": 100})
        except stripe.StripeError as failed:
            raise GatewayError(type(failed).__name__) from None
        refunds = [r.to_dict() for r in found.data]
        return [
            GatewayRefund(
                str(r["id"]),
                int(r["amount"]),
                str(r["status"]),
                str((r.get("metadata") or {}).get("billportal_refund", "")),
            )
            for r in refunds
        ]

    def verify_webhook(self, payload: bytes, signature: str) -> GatewayEvent:
        if not self._webhook_secret:
            raise GatewayError("no webhook signing secret is set")
        try:
            event = stripe.Webhook.construct_event(payload.decode("utf-8"), signature, self._webhook_secret)
        except (ValueError, UnicodeDecodeError, stripe.SignatureVerificationError):
            raise GatewayError("the webhook's signature does not verify") from None
        found = event.to_dict()["data"]["object"]
        payment_id = str(found.get("payment_intent") or found.get("id") or "")
        metadata = found.get("metadata") or {}
        return GatewayEvent(str(event.id), str(event.type), payment_id, str(metadata.get("billportal_attempt", "")))

    def fetch_status(self, gateway_payment_id: str) -> Charge:
        try:
            intent = self._client().payment_intents.retrieve(gateway_payment_id)
        except stripe.StripeError as failed:
            raise GatewayError(type(failed).__name__) from None
        status = {"succeeded": "succeeded", "canceled": "declined"}.get(intent.status, "pending")
        return Charge(str(intent.id), status)


def _stripe_message(failed: stripe.StripeError) -> str:
    """Stripe's reason in a few words, never the request's values (its messages name no key or card)."""
    return f"{type(failed).__name__}: {failed.user_message or ''}"[:200]


def gateway_for(settings: PaymentSettings, master_keys: MasterKeys) -> Gateway | None:
    """The company's gateway (its secrets opened), or None when it takes no payments online."""
    if settings.gateway == "test" and settings.test_mode:
        return TestGateway(settings.company_id)
    if settings.gateway == "stripe" and settings.secret_key_sealed:
        return StripeGateway(
            unseal_secret(master_keys, settings.secret_key_sealed, settings.company_id),
            webhook_secret=unseal_secret(master_keys, settings.webhook_secret_sealed, settings.company_id),
            api_base=settings.api_base,
            test_mode=settings.test_mode,
        )
    return None


def unseal_secret(master_keys: MasterKeys, text: str, company_id: int) -> str:
    """A gateway secret opened from its sealed text ("" stays "")."""
    if not text:
        return ""
    return master_keys.unseal(Sealed.from_text(text), GATEWAY_SEAL_PURPOSE, company_id).decode("utf-8")
