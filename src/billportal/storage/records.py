"""Every record the storage layer returns: plain dataclasses, so that no row object leaks past it.

Money is integer minor units beside an ISO 4217 currency; times are integer UNIX
seconds; dates are ``YYYY-MM-DD`` strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from billportal.core import countries
from billportal.sso.tokens import Policy, VerificationKey

# -- companies and their SSO keys -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompanyRows:
    """A company's row and its SSO key rows (keys still sealed): what processes share through Redis."""

    company: dict[str, Any]
    keys: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Company:
    """A merchant, with its SSO policy and its opened SSO keys (kept in memory only)."""

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
    sso_keys: tuple[VerificationKey, ...] = field(repr=False)
    session_cutoff: int | None = None  # customer sessions created at or before it are over
    # The seller's details (services/companies.py checks them; "" when not given).
    legal_name: str = ""
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    postal_code: str = ""
    region: str = ""
    country: str = ""
    tax_id: str = ""
    support_email: str = ""
    support_phone: str = ""
    default_currency: str = "USD"
    footer_text: str = ""
    logo_sha256: str = ""  # "" when there is no logo
    email_sign_in: bool = False  # customers may ask for a sign-in link by email
    default_locale: str = "en"  # the portal's language when nothing else chooses one
    contacts_page: bool = False  # customers may manage their own contacts in the portal

    @property
    def seller_name(self) -> str:
        """The name documents give the seller: the legal name, else the display name."""
        return self.legal_name or self.name

    @property
    def address_lines(self) -> tuple[str, ...]:
        """The seller's postal address, one line each, without the empty ones."""
        place = " ".join(part for part in (self.postal_code, self.city) if part)
        if self.region:
            place = f"{place}, {self.region}" if place else self.region
        country = countries.local_name(self.country) or self.country if self.country else ""
        return tuple(line for line in (self.address_line1, self.address_line2, place, country) if line)

    @property
    def contact(self) -> str:
        """How customers reach the seller: its support e-mail and phone."""
        return " · ".join(part for part in (self.support_email, self.support_phone) if part)


@dataclass(frozen=True, slots=True)
class SsoKeyInfo:
    """An SSO key as listed to admins: never the secret itself."""

    kid: str
    state: str
    weak: bool
    created_at: int
    last_used_at: int | None
    retiring_until: int | None
    revoked_at: int | None


# -- customers and their documents --------------------------------------------------------


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
    tax_id: str
    currency: str
    created_at: int
    updated_at: int
    locale: str = ""  # the preferred language ("": none)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customer in the dashboard's list, with what they owe on open invoices and what of it is past due."""

    customer: Customer
    owed: int
    past_due: int


@dataclass(frozen=True, slots=True)
class CustomerPage:
    """A page of the dashboard's customers list, and the cursor of the next page (None: the last page)."""

    rows: list[CustomerRow]
    next_after: int | None
    window_ended: bool = False  # a short search read its window of customers before it found a full page


@dataclass(frozen=True, slots=True)
class LineItem:
    """One line of an invoice, credit note or estimate."""

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
    status: str  # draft, open, paid, voided
    issued_on: str
    due_on: str | None
    subtotal: int
    discount: int
    tax: int
    total: int
    amount_paid: int
    amount_credited: int
    balance: int
    notes: str
    created_at: int
    updated_at: int
    lines: tuple[LineItem, ...] = ()

    def display_status(self, today: str) -> str:
        """The status a customer sees: an open invoice past its due date is past due."""
        if self.status == "open" and self.due_on is not None and self.due_on < today:
            return "past_due"
        return self.status


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
    created_at: int
    updated_at: int
    method_detail: str = ""  # a payment taken online: "Visa ending 4242"
    gateway_payment_id: str | None = None
    amount_refunded: int = 0  # what succeeded refunds gave back of it
    gateway: str | None = None  # the gateway that took it online (test, stripe); None: recorded offline
    applications: tuple[PaymentApplication, ...] = ()
    refunds: tuple[Refund, ...] = ()

    @property
    def unapplied(self) -> int:
        """What is neither applied to an invoice nor refunded: the customer's credit."""
        return self.amount - self.amount_refunded - sum(a.amount for a in self.applications)

    @property
    def refundable(self) -> int:
        """What may still be refunded: the amount less what is refunded or being refunded."""
        return self.amount - self.amount_refunded - sum(r.amount for r in self.refunds if r.status == "pending")


@dataclass(frozen=True, slots=True)
class Refund:
    """Money given back of a payment: pending while its gateway is asked, then succeeded or failed."""

    id: int
    company_id: int
    payment_id: int
    amount: int
    reason: str
    status: str  # pending, succeeded, failed
    source: str  # dashboard, api, gateway (made in the gateway's own dashboard)
    refunded_on: str
    request_key: str
    gateway_refund_id: str | None
    message: str
    created_at: int
    updated_at: int


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
    subtotal: int  # less the lines' discounts
    tax: int
    total: int
    notes: str
    created_at: int
    updated_at: int
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
    subtotal: int  # less the lines' discounts
    tax: int
    total: int
    approved_by: str | None
    approved_at: int | None
    declined_at: int | None
    decline_reason: str
    notes: str
    created_at: int
    updated_at: int
    lines: tuple[LineItem, ...] = ()


Document = Invoice | Payment | CreditNote | Estimate


@dataclass(frozen=True, slots=True)
class CustomerEvent:
    """Something a customer did in the portal that the company sees."""

    id: int
    company_id: int
    customer_id: int
    at: int
    kind: str
    detail: str


# -- a customer's statement: the documents it is computed from ------------------------------


# A statement reads a customer's whole history: its rows are named tuples, which cost a fraction of a
# frozen dataclass to make.
class LedgerInvoice(NamedTuple):
    id: int
    number: str
    issued_on: str
    due_on: str | None
    total: int


class LedgerPayment(NamedTuple):
    id: int
    number: str
    received_on: str
    method: str
    amount: int
    amount_refunded: int = 0


class LedgerApplication(NamedTuple):
    payment_id: int
    invoice_id: int
    amount: int


class LedgerCreditNote(NamedTuple):
    id: int
    number: str
    issued_on: str
    invoice_id: int | None
    total: int


@dataclass(frozen=True, slots=True)
class LedgerRefund:
    """A succeeded refund of a payment, and what it took back from each invoice (invoice id, amount)."""

    id: int
    payment_id: int
    payment_number: str
    refunded_on: str
    amount: int
    invoices: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Ledger:
    """A customer's documents in one currency, issued up to some date."""

    currency: str
    invoices: tuple[LedgerInvoice, ...]
    payments: tuple[LedgerPayment, ...]
    applications: tuple[LedgerApplication, ...]
    credit_notes: tuple[LedgerCreditNote, ...]
    refunds: tuple[LedgerRefund, ...] = ()
    # A month's ledger (documents.month_ledger) holds only the month's documents: this is the balance
    # of everything dated before it. A ledger of the whole history has 0.
    opening: int = 0


# -- customers' sessions and sign-ins ------------------------------------------------------


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
    locale: str = ""  # chosen at sign-in (the token's claim) or by the first ?locale=; "" none
    device: str = ""  # "Firefox on Windows": a coarse description from the User-Agent at sign-in
    contact_id: int | None = None  # signed in as this contact of the customer; None: the customer themself
    email: str = ""  # the address an email sign-in used (its accounts may be switched between); "" for SSO


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of a customer's live sessions, as their Security page lists it (never its id or hash)."""

    handle: str  # an opaque name of the session for the page's forms
    device: str
    created_at: int
    last_seen_at: int
    current: bool


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
    method: str = "sso"  # "sso" (a signed link) or "email" (an emailed link or code)
    contact_id: int | None = None  # the customer's contact who signed in, if one did


@dataclass(slots=True)  # not frozen: made on every sign-in, and frozen __init__ is slow
class NewSignIn:
    """Everything one successful sign-in writes, in one transaction."""

    session: Session
    event: SignInEvent
    jti_expires_at: int | None
    key_last_used: tuple[str, int] | None  # (kid, now) when the stored time is stale


# -- the dashboard: admins, their sessions, the audit trail -----------------------------------


@dataclass(frozen=True, slots=True)
class Admin:
    """A person who administers one or more companies in the dashboard."""

    id: int
    email: str
    password_hash: str = field(repr=False)
    created_at: int
    password_changed_at: int
    must_change_password: bool


@dataclass(frozen=True, slots=True)
class Membership:
    """A company an admin administers, and their role in it."""

    company_id: int
    username: str
    name: str
    role: str = "owner"


@dataclass(frozen=True, slots=True)
class Member:
    """An admin of one company, with their role in it."""

    admin: Admin
    role: str


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation to administer a company in a role (its token is stored only as a hash)."""

    id: int
    company_id: int
    email: str
    role: str
    invited_by: str
    created_at: int
    expires_at: int
    accepted_at: int | None
    accepted_by: int | None
    company_name: str = ""  # for the page that accepts it


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A signed-in admin's dashboard session."""

    id_hash: bytes = field(repr=False)
    admin_id: int
    company_id: int | None
    csrf_token: str = field(repr=False)
    created_at: int
    last_seen_at: int
    expires_at: int
    sudo_until: int | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the admin audit trail: who did what, when, from where."""

    company_id: int | None
    admin_id: int | None
    actor: str
    at: int
    action: str
    detail: str
    ip: str
    user_agent: str
    id: int | None = None


# -- the REST API: API keys ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listed: never the key itself, which is stored only as its SHA-256."""

    id: int
    company_id: int
    prefix: str
    name: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None
    scopes: tuple[str, ...]  # what the key may do (services.api_keys.SCOPES), in that order


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just made: ``key`` is shown to its creator once and never again."""

    key: str = field(repr=False)
    info: ApiKeyInfo


@dataclass(frozen=True, slots=True)
class ApiCaller:
    """Whose API key signed an API request."""

    company_id: int
    username: str
    key_id: int
    prefix: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"api:{self.prefix}"


# -- online payments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentSettings:
    """How a company takes payments online; the gateway's secrets stay sealed here."""

    company_id: int
    gateway: str  # none, test, stripe
    test_mode: bool
    allow_partial: bool
    allow_saved_methods: bool
    allow_autopay: bool
    autopay_retry_days: str
    publishable_key: str
    secret_key_sealed: str = field(repr=False)
    webhook_secret_sealed: str = field(repr=False)
    api_base: str
    updated_at: int

    @property
    def online(self) -> bool:
        """Whether customers can pay by card in the portal."""
        return self.gateway != "none"


@dataclass(frozen=True, slots=True)
class SavedPaymentMethod:
    """A customer's saved card: the gateway's reference and what the customer sees, never the number."""

    id: int
    company_id: int
    customer_id: int
    gateway: str
    gateway_ref: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    created_at: int

    @property
    def label(self) -> str:
        """``Visa ending 4242``."""
        return card_label(self.brand, self.last4)


@dataclass(frozen=True, slots=True)
class PaymentAttempt:
    """One submission of the pay form, found again by its one-time token."""

    id: int
    company_id: int
    customer_id: int
    token: str
    status: str  # pending, succeeded, declined, failed
    gateway: str
    currency: str
    amount: int
    applications: str  # JSON: [[invoice id, amount], ...]
    gateway_payment_id: str | None
    method_detail: str
    payment_id: int | None
    message: str
    created_at: int
    updated_at: int


_BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover"}


def card_label(brand: str, last4: str) -> str:
    """How a card reads to people: ``Visa ending 4242``."""
    return f"{_BRANDS.get(brand, brand.capitalize() or 'Card')} ending {last4}"


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """Where a company's events are sent; its secrets stay sealed here."""

    id: int
    company_id: int
    url: str
    event_types: str  # space-separated
    description: str
    secret_sealed: str
    previous_secret_sealed: str
    previous_until: int | None
    enabled: bool
    disabled_reason: str
    failing_since: int | None
    created_at: int
    updated_at: int

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.event_types.split())


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event to one endpoint, as the delivery log shows it."""

    id: int
    endpoint_id: int
    event_id: str  # msg_...
    type: str
    object_key: str
    state: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: int
    last_status: int | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One try to deliver: the answer's status (None: no answer), time and first bytes."""

    id: int
    delivery_id: int
    at: int
    status_code: int | None
    duration_ms: int
    error: str
    response_head: str


# -- email sign-in ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailSignIn:
    """A sign-in link sent by email, with its code (only their hashes are stored)."""

    id: int
    company_id: int
    customer_id: int
    email: str
    link_hash: bytes = field(repr=False)
    code_hash: bytes = field(repr=False)
    page: str
    tries: int
    created_at: int
    expires_at: int
    used_at: int | None
    contact_id: int | None = None  # the link signs in as this contact of the customer


@dataclass(frozen=True, slots=True)
class Contact:
    """A person at a customer's business, with their own email and role (services/contacts.py)."""

    id: int
    company_id: int
    customer_id: int
    name: str
    email: str
    role: str  # "view", "pay" or "manage"
    created_at: int
    updated_at: int
