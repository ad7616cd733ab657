"""Plain records that the storage layer returns: no ORM objects leak past it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from billportal.sso.tokens import Policy, VerificationKey


@dataclass(frozen=True, slots=True)
class Company:
    """A merchant, with its SSO policy and its decrypted SSO keys (kept in memory only)."""

    id: int
    username: str
    name: str
    accent_color: str
    time_zone: str
    payment_instructions: str
    sso_enabled: bool
    policy: Policy
    sign_in_url: str
    sign_out_url: str
    error_url: str
    frame_ancestors: tuple[str, ...]
    keys: tuple[VerificationKey, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """An SSO key as listed to admins: never the secret itself."""

    kid: str
    state: str
    weak: bool
    created_at: int
    last_used_at: int | None
    retiring_until: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class Customer:
    company_id: int
    id: int
    number: str
    name: str
    email: str
    phone: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    country: str
    currency: str


@dataclass(slots=True)  # not frozen: made on every sign-in, and frozen __init__ is slow
class Session:
    """A signed-in customer's server-side session (looked up by the hash of its id)."""

    id_hash: bytes = field(repr=False)
    company_id: int
    customer_id: int
    csrf_token: str = field(repr=False)
    created_at: int
    last_seen_at: int
    expires_at: int


@dataclass(slots=True)  # not frozen: made on every sign-in, and frozen __init__ is slow
class SignInEvent:
    """One sign-in attempt, for the company's sign-in log."""

    company_id: int
    at: int
    result: str  # "success" or "failure"
    reason: str
    customer_id: int | None
    issuer: str | None
    kid: str | None
    jti: str | None
    ip: str
    user_agent: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class LineItem:
    position: int
    description: str
    quantity: str
    unit_price: int
    discount: int
    tax: int
    amount: int


@dataclass(frozen=True, slots=True)
class Invoice:
    id: int
    company_id: int
    customer_id: int
    number: str
    currency: str
    status: str
    issued_on: str
    due_on: str | None
    subtotal: int
    discount: int
    tax: int
    total: int
    amount_paid: int
    balance: int
    notes: str
    lines: tuple[LineItem, ...] = ()
    amount_credited: int = 0

    def display_status(self, today: str) -> str:
        """The status a customer sees: an open invoice past its due date is past due."""
        if self.status == "open" and self.due_on is not None and self.due_on < today:
            return "past_due"
        return self.status


@dataclass(slots=True)  # not frozen: made on every sign-in, and frozen __init__ is slow
class NewSignIn:
    """Everything one successful sign-in writes, in one transaction."""

    session: Session
    event: SignInEvent
    jti_expires_at: int | None
    key_last_used: tuple[str, int] | None  # (kid, now) when the stored time is stale


@dataclass(frozen=True, slots=True)
class PaymentApplication:
    """The part of a payment applied to one invoice."""

    invoice_id: int
    invoice_number: str
    amount: int


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    company_id: int
    customer_id: int
    number: str
    currency: str
    received_on: str
    method: str
    reference: str
    amount: int
    applications: tuple[PaymentApplication, ...] = ()

    @property
    def unapplied(self) -> int:
        return self.amount - sum(a.amount for a in self.applications)


@dataclass(frozen=True, slots=True)
class CreditNote:
    id: int
    company_id: int
    customer_id: int
    number: str
    currency: str
    status: str  # draft, open (account credit), applied (to invoice_id), voided
    issued_on: str
    invoice_id: int | None
    subtotal: int
    tax: int
    total: int
    notes: str
    lines: tuple[LineItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Estimate:
    id: int
    company_id: int
    customer_id: int
    number: str
    currency: str
    status: str  # draft, sent, approved, declined, voided
    issued_on: str
    expires_on: str | None
    subtotal: int
    tax: int
    total: int
    approved_by: str | None
    approved_at: int | None
    notes: str
    lines: tuple[LineItem, ...] = ()


@dataclass(frozen=True, slots=True)
class CustomerEvent:
    """Something a customer did in the portal that the company sees."""

    id: int
    company_id: int
    customer_id: int
    at: int
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class LineInput:
    description: str
    quantity: str
    unit_price: int
    discount: int = 0
    tax: int = 0

    @property
    def amount(self) -> int:
        return line_amount(self.quantity, self.unit_price, self.discount, self.tax)


def line_amount(quantity: str, unit_price: int, discount: int, tax: int) -> int:
    gross = (Decimal(quantity) * unit_price).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(gross) - discount + tax
