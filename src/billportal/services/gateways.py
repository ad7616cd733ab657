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
from dataclasses import dataclass, field
from typing import Final, Protocol

from billportal.storage.records import PaymentSettings, card_label

GATEWAYS: Final = ("none", "test", "stripe")


class GatewayError(Exception):
    """The gateway could not be reached or refused the request for a reason that is not the card's."""


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
    """A verified webhook event: its id (processed once), kind and the payment it is about."""

    event_id: str
    kind: str
    gateway_payment_id: str
    created: int


class ChargesSavedMethods(Protocol):
    def charge_saved(
        self, *, customer_id: int, method_ref: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        """Charge a saved method, off session (AutoPay, or the customer choosing a saved card)."""
        ...


class ConfirmsPayments(Protocol):
    def confirm_new(
        self, *, customer_id: int, method: NewMethod, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        """Take a payment with a new card; the same ``idempotency_key`` never charges twice."""
        ...


class SetsUpMethods(Protocol):
    def set_up(self, *, customer_id: int, method: NewMethod) -> SetUp:
        """Save a card for later without charging it (Declined if the card is refused)."""
        ...


class Refunds(Protocol):
    def refund(self, *, gateway_payment_id: str, amount: int, idempotency_key: str) -> str:
        """Give back some or all of a payment; the gateway's refund id."""
        ...


class VerifiesWebhooks(Protocol):
    def verify_webhook(self, payload: bytes, signature: str) -> GatewayEvent:
        """The event a webhook carries, if its signature is good (GatewayError otherwise)."""
        ...


class FetchesStatus(Protocol):
    def fetch_status(self, gateway_payment_id: str) -> Charge:
        """Where a payment stands at the gateway now (for reconciling one whose answer was lost)."""
        ...


class Gateway(ChargesSavedMethods, ConfirmsPayments, SetsUpMethods, Refunds, VerifiesWebhooks, FetchesStatus, Protocol):
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
DECLINED: Final = "Your card was declined. No money was taken. Try another card, or ask your bank why."
NOT_A_TEST_CARD: Final = "Test mode takes only test card numbers, such as 4242 4242 4242 4242."


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

    def confirm_new(
        self, *, customer_id: int, method: NewMethod, amount: int, currency: str, idempotency_key: str
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

    def set_up(self, *, customer_id: int, method: NewMethod) -> SetUp:
        card, outcome = self._card(method)
        if outcome == "declined":
            raise Declined(DECLINED)
        marker = "declined_" if outcome == "declined_later" else ""
        return SetUp(f"test_pm_{marker}{secrets.token_hex(8)}", card)

    def refund(self, *, gateway_payment_id: str, amount: int, idempotency_key: str) -> str:
        return self._id("test_re", idempotency_key)

    def verify_webhook(self, payload: bytes, signature: str) -> GatewayEvent:
        raise GatewayError("the test gateway sends no webhooks")

    def fetch_status(self, gateway_payment_id: str) -> Charge:
        return Charge(gateway_payment_id, "succeeded")


def gateway_for(settings: PaymentSettings) -> Gateway | None:
    """The company's gateway, or None when it takes no payments online."""
    if settings.gateway == "test" and settings.test_mode:
        return TestGateway(settings.company_id)
    return None
