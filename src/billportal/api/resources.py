"""The API's objects: customers, billing documents, sign-in links, SSO keys and sign-in events.

Each is a :class:`~billportal.api.fields.Shape`. Money is an integer of minor
units (cents) beside an ISO 4217 currency; times are UNIX seconds; dates are
``YYYY-MM-DD``; quantities are decimal strings, so that no amount is ever a
binary fraction.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from billportal.api.errors import ERROR_CODES
from billportal.api.fields import Field, Shape, read_only
from billportal.core import countries
from billportal.core.bounds import MAX_AMOUNT, MAX_ID, TAX_ID
from billportal.services.billing import PAYMENT_METHODS
from billportal.services.events import EVENT_TYPES
from billportal.services.gateways import GATEWAYS
from billportal.services.mail import ADDRESS_PATTERN, KINDS
from billportal.services.payments import HINT_MIN_LENGTH, MAX_SECRET_LENGTH
from billportal.services.sso import GRACE_PERIODS
from billportal.services.webhooks import MAX_OVERLAP, MAX_URL_LENGTH
from billportal.sso.pages import LANDING_HINT, LANDING_PATTERN

# Text on one line, without control characters; and the same with at least one visible character.
LINE: Final = r"^[^\u0000-\u001F\u007F]*$"
NONBLANK: Final = r"^[^\u0000-\u001F\u007F]*[^\u0000-\u0020\u007F][^\u0000-\u001F\u007F]*$"
# Text over several lines: tabs and line breaks allowed, other control characters not.
TEXT: Final = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*$"
MAX_TIME: Final = 253_402_300_799
MAX_LINES: Final = 100
MAX_TTL: Final = 366 * 86400


def text(max_length: int, pattern: str = LINE) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "pattern": pattern}


def nonblank(max_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NONBLANK}


def integer(minimum: int = 0, maximum: int = MAX_AMOUNT) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def const(value: str) -> dict[str, Any]:
    return {"type": "string", "enum": [value]}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    result = dict(schema)
    result["type"] = [schema["type"], "null"]
    if "enum" in schema:
        result["enum"] = [*schema["enum"], None]
    return result


ID: Final = integer(1, MAX_ID)
TIME: Final = integer(0, MAX_TIME)
DATE: Final = {"type": "string", "format": "date"}
MONEY: Final = integer()
CURRENCY: Final = {"type": "string", "minLength": 3, "maxLength": 3, "pattern": "^[A-Z]{3}$"}
EMAIL: Final = {
    "type": "string",
    "maxLength": 254,
    "pattern": r"^$|^[^@\u0000-\u0020\u007F]+@[^@\u0000-\u0020\u007F]+$",
}
CURRENCY_HINT: Final = "must be an ISO 4217 code in capitals, such as USD"
NAME_HINT: Final = "must be text on one line, with at least one visible character"
DATE_HINT: Final = "must be a date written YYYY-MM-DD"


def _object_field(name: str) -> Field:
    return read_only("object", const(name), f'Always "{name}".')


def _timestamps() -> tuple[Field, Field]:
    return (
        read_only("created_at", TIME, "When it was created (UNIX seconds)."),
        read_only("updated_at", TIME, "When it last changed (UNIX seconds); see the updated_after filter."),
    )


def _number(kind: str) -> Field:
    return Field(
        "number",
        nonblank(64),
        f"The {kind} number customers see, unique in the company (default: the next free one).",
        hint=NAME_HINT,
    )


def _currency(kind: str, *, update: bool = True) -> Field:
    return Field(
        "currency",
        CURRENCY,
        f"ISO 4217 currency of the {kind} (default: the customer's).",
        update=update,
        hint=CURRENCY_HINT,
    )


def _customer_id(kind: str) -> Field:
    return Field("customer_id", ID, f"The customer the {kind} is for.", required=True, update=False)


def _notes(kind: str) -> Field:
    return Field("notes", text(10_000, TEXT), f"Notes shown to the customer on the {kind}.")


# -- customers -------------------------------------------------------------------------------

CUSTOMER: Final = Shape(
    "Customer",
    "A customer of the company: whom sign-in links sign in, and whom documents are for.",
    (
        Field(
            "id",
            ID,
            "The customer id: the sub claim of the customer's sign-in tokens. Default: the next free number.",
            update=False,
        ),
        _object_field("customer"),
        Field("number", text(64), "The customer's account number (default CUST-{id})."),
        Field("name", nonblank(200), "The customer's name.", required=True, hint=NAME_HINT),
        Field(
            "email",
            {"type": "string", "maxLength": 254, "pattern": f"^$|^{ADDRESS_PATTERN}$"},
            "Billing e-mail address (where the company's emails to the customer go).",
            hint="must be an e-mail address such as billing@example.com, or empty",
        ),
        read_only(
            "email_bounced",
            {"type": "boolean"},
            "Whether the mail server refused this address for good: no email is sent to it until it changes "
            "(or billportal mail unbounce).",
        ),
        Field("phone", text(64), "Billing phone number."),
        Field("address_line1", text(200), "Billing address, first line."),
        Field("address_line2", text(200), "Billing address, second line."),
        Field("city", text(100), "City."),
        Field(
            "state",
            text(100),
            "State, province or region. For a country whose ISO 3166-2 subdivisions are known, one of them:"
            " its code (NM), with the country (US-NM) or its name (New Mexico); kept as the code (NM).",
        ),
        Field("postal_code", text(32), "Postal code."),
        Field(
            "country",
            {"type": "string", "enum": ["", *sorted(code for code, _ in countries.countries())]},
            "ISO 3166-1 alpha-2 country code in capitals, such as US (or empty).",
            hint="must be an ISO 3166-1 alpha-2 country code in capitals, such as US, or empty",
        ),
        Field(
            "tax_id",
            {"type": "string", "maxLength": 64, "pattern": f"^$|^{TAX_ID}$"},
            "The customer's tax or VAT id, as their tax authority writes it (or empty).",
            hint="must be letters and digits, with spaces, dots, hyphens or slashes between them, or empty",
        ),
        Field(
            "currency",
            CURRENCY,
            "The customer's currency (default: the company's default currency, USD unless changed).",
            hint=CURRENCY_HINT,
        ),
        *_timestamps(),
    ),
)

CONTACT: Final = Shape(
    "Contact",
    "A person at a customer's business who signs in to the portal with their own email (email sign-in), with a "
    "role: view (documents only), pay (also pays invoices and answers estimates), manage (also billing details, "
    "payment methods and the customer's contacts).",
    (
        read_only("id", ID, "The contact's id."),
        _object_field("contact"),
        read_only("customer_id", ID, "The customer (business) the contact belongs to."),
        Field("name", nonblank(200), "The contact's name.", required=True, hint=NAME_HINT),
        Field(
            "email",
            {"type": "string", "minLength": 3, "maxLength": 254, "pattern": f"^{ADDRESS_PATTERN}$"},
            "The contact's email: they sign in with it. One contact per address per customer (kept in lower case).",
            required=True,
            hint="must be an e-mail address such as ap@example.com",
        ),
        Field(
            "role",
            {"type": "string", "enum": ["view", "pay", "manage"]},
            "What the contact may do in the portal: view, pay, or manage.",
            required=True,
        ),
        *_timestamps(),
    ),
)

# -- lines --------------------------------------------------------------------------------------

LINE_INPUT: Final = Shape(
    "LineItemInput",
    "One line of a document as you send it; its amount is worked out for you.",
    (
        Field("description", nonblank(500), "What the line is for.", required=True, hint=NAME_HINT),
        Field(
            "quantity",
            {"type": "string", "minLength": 1, "maxLength": 16, "pattern": r"^[0-9]{1,9}(\.[0-9]{1,6})?$"},
            'How many, as a decimal string such as "2" or "1.5".',
            required=True,
            hint='must be a decimal number written as a string, such as "2" or "1.5"',
        ),
        Field("unit_price", MONEY, "Price of one, in minor units (cents).", required=True),
        Field("discount", MONEY, "Discount off the line, in minor units (default 0)."),
        Field("tax", MONEY, "Tax on the line, in minor units (default 0)."),
    ),
)

LINE_ITEM: Final = Shape(
    "LineItem",
    "One line of a document.",
    (
        read_only("position", integer(1, MAX_LINES), "Its place on the document, from 1."),
        read_only("description", {"type": "string"}, "What the line is for."),
        read_only("quantity", {"type": "string"}, "How many, as a decimal string."),
        read_only("unit_price", MONEY, "Price of one, in minor units."),
        read_only("discount", MONEY, "Discount off the line, in minor units."),
        read_only("tax", MONEY, "Tax on the line, in minor units."),
        read_only(
            "amount", {"type": "integer", "minimum": 0}, "quantity x unit_price - discount + tax, in minor units."
        ),
    ),
)


def _lines(kind: str) -> Field:
    return Field(
        "lines",
        {"type": "array", "items": LINE_INPUT, "minItems": 1, "maxItems": MAX_LINES},
        f"The lines of the {kind}; sending lines replaces them all.",
        required=True,
        output={"type": "array", "items": LINE_ITEM},
    )


def _sums(*names: str) -> tuple[Field, ...]:
    docs = {
        "subtotal": "Sum of quantity x unit price of the lines (less discounts, for credit notes and estimates).",
        "discount": "Sum of the lines' discounts.",
        "tax": "Sum of the lines' taxes.",
        "total": "What the document comes to.",
        "amount_paid": "What payments have paid off it.",
        "amount_credited": "What credit notes have taken off it.",
        "balance": "What is still owed (0 once paid or voided).",
    }
    return tuple(read_only(name, {"type": "integer", "minimum": 0}, docs[name]) for name in names)


INVOICE_STATUSES: Final = ("draft", "open", "paid", "voided")
INVOICE: Final = Shape(
    "Invoice",
    "An invoice: drafts are not shown to the customer; open ones are owed; paid and voided ones are settled.",
    (
        read_only("id", ID, "The invoice id."),
        _object_field("invoice"),
        _customer_id("invoice"),
        _number("invoice"),
        _currency("invoice"),
        Field(
            "status",
            {"type": "string", "enum": ["draft", "open"]},
            "draft or open (default open); payments make it paid, voiding makes it voided.",
            output={"type": "string", "enum": list(INVOICE_STATUSES)},
        ),
        Field("issued_on", DATE, "The invoice date.", required=True, hint=DATE_HINT),
        Field("due_on", nullable(DATE), "When payment is due (null: on receipt).", hint="must be a date or null"),
        _notes("invoice"),
        _lines("invoice"),
        *_sums("subtotal", "discount", "tax", "total", "amount_paid", "amount_credited", "balance"),
        *_timestamps(),
    ),
)

PAYMENT_APPLICATION: Final = Shape(
    "PaymentApplication",
    "The part of a payment applied to one open invoice of the same customer and currency.",
    (
        Field("invoice_id", ID, "The invoice paid.", required=True),
        Field("amount", integer(1), "How much of the payment went to it, in minor units.", required=True),
    ),
)

REFUND_STATUSES: Final = ("pending", "succeeded", "failed")
REFUND: Final = Shape(
    "Refund",
    "Money given back of a payment. A payment taken online is refunded at its gateway too; one recorded "
    "offline only in the books. A refund takes back the payment's unapplied credit first, then what it "
    "paid on invoices (newest application first): those invoices are owed again.",
    (
        read_only("id", ID, "The refund id."),
        _object_field("refund"),
        read_only("payment_id", ID, "The payment refunded."),
        read_only("amount", integer(1), "How much was given back, in minor units."),
        read_only("reason", text(500), "Why (shown to the customer on the payment's receipt)."),
        read_only(
            "status",
            {"type": "string", "enum": list(REFUND_STATUSES)},
            "succeeded; pending while the gateway is asked; failed when the gateway refused it.",
        ),
        read_only(
            "source",
            {"type": "string", "enum": ["dashboard", "api", "gateway"]},
            "Where it was made: the dashboard, the API, or the payment gateway's own dashboard.",
        ),
        read_only("refunded_on", DATE, "When it was made (the company's date)."),
        read_only("gateway_refund_id", nullable(text(255)), "The payment gateway's id for it (online payments)."),
        read_only("created_at", TIME, "When it was asked for (UNIX seconds)."),
    ),
)

REFUND_REQUEST: Final = Shape(
    "RefundCreate",
    "What to refund of the payment. Send an Idempotency-Key so that a retry never refunds twice.",
    (
        Field("amount", integer(1), "How much to give back, in minor units (default: all that is left)."),
        Field("reason", text(500), "Why: shown to the customer on the payment's receipt."),
    ),
)

PAYMENT: Final = Shape(
    "Payment",
    "Money received from a customer, applied to invoices; what is not applied stays as credit.",
    (
        read_only("id", ID, "The payment id."),
        _object_field("payment"),
        _customer_id("payment"),
        _number("payment"),
        _currency("payment", update=False),
        Field("received_on", DATE, "When the money arrived.", required=True, hint=DATE_HINT),
        Field("method", {"type": "string", "enum": list(PAYMENT_METHODS)}, "How it was paid.", required=True),
        Field("reference", text(100), "A check number, transfer reference or the like."),
        Field("amount", integer(1), "The amount received, in minor units.", required=True, update=False),
        Field(
            "applications",
            {"type": "array", "items": PAYMENT_APPLICATION, "maxItems": MAX_LINES},
            "The invoices it pays and how much of each; fixed once recorded (delete the payment to undo).",
            update=False,
        ),
        read_only("unapplied", {"type": "integer", "minimum": 0}, "What is not applied to any invoice."),
        read_only("method_detail", text(64), 'A payment taken online: the card it came from ("Visa ending 4242").'),
        read_only(
            "gateway_payment_id", nullable(text(255)), "A payment taken online: the payment gateway's id for it."
        ),
        read_only(
            "gateway",
            nullable({"type": "string", "enum": ["test", "stripe"]}),
            "A payment taken online: the gateway that took it (null: recorded offline).",
        ),
        read_only("amount_refunded", MONEY, "What refunds gave back of it so far (never more than amount)."),
        read_only("refunds", {"type": "array", "items": REFUND}, "Its refunds, oldest first."),
        *_timestamps(),
    ),
)

CREDIT_NOTE_STATUSES: Final = ("draft", "open", "applied", "voided")
CREDIT_NOTE: Final = Shape(
    "CreditNote",
    "Credit given to a customer: applied to one invoice at once, or kept as account credit (open).",
    (
        read_only("id", ID, "The credit note id."),
        _object_field("credit_note"),
        _customer_id("credit note"),
        _number("credit note"),
        _currency("credit note"),
        Field(
            "status",
            {"type": "string", "enum": ["draft", "open"]},
            "draft or open (default open); applied when invoice_id is given.",
            output={"type": "string", "enum": list(CREDIT_NOTE_STATUSES)},
        ),
        Field("issued_on", DATE, "The credit note date.", required=True, hint=DATE_HINT),
        Field(
            "invoice_id",
            nullable(ID),
            "An open invoice of the customer to apply the whole credit to at once.",
            update=False,
        ),
        _notes("credit note"),
        _lines("credit note"),
        *_sums("subtotal", "tax", "total"),
        *_timestamps(),
    ),
)

ESTIMATE_STATUSES: Final = ("draft", "sent", "approved", "declined", "voided")
ESTIMATE: Final = Shape(
    "Estimate",
    "A quote the customer can approve in the portal.",
    (
        read_only("id", ID, "The estimate id."),
        _object_field("estimate"),
        _customer_id("estimate"),
        _number("estimate"),
        _currency("estimate"),
        Field(
            "status",
            {"type": "string", "enum": ["draft", "sent", "declined"]},
            "draft, sent (default: the customer can approve it) or declined; approved is set by the customer.",
            output={"type": "string", "enum": list(ESTIMATE_STATUSES)},
        ),
        Field("issued_on", DATE, "The estimate date.", required=True, hint=DATE_HINT),
        Field("expires_on", nullable(DATE), "The last day it can be approved (null: never).", hint=DATE_HINT),
        _notes("estimate"),
        _lines("estimate"),
        *_sums("subtotal", "tax", "total"),
        read_only("approved_by", nullable({"type": "string"}), "Who approved it in the portal."),
        read_only("approved_at", nullable(TIME), "When it was approved."),
        read_only("declined_at", nullable(TIME), "When it was declined (by the customer, or set so); null otherwise."),
        read_only(
            "decline_reason",
            {"type": "string"},
            "Why the customer declined it in the portal, in their words (may be empty).",
        ),
        *_timestamps(),
    ),
)

DELETED: Final = Shape(
    "Deleted",
    "What a DELETE answers: the object as it was, gone now.",
    (
        read_only("object", {"type": "string"}, "The kind of object deleted."),
        read_only("id", ID, "Its id."),
        read_only("deleted", {"type": "boolean", "enum": [True]}, "Always true."),
    ),
)

# -- sign-in links, SSO keys, sign-in events ------------------------------------------------------

SIGN_IN_LINK_REQUEST: Final = Shape(
    "SignInLinkRequest",
    "What the link should do.",
    (
        Field(
            "ttl",
            integer(1, MAX_TTL),
            "Seconds the link works for (default 300); at most the company's maximum link lifetime.",
        ),
        Field(
            "redirect_to",
            {"type": "string", "maxLength": 40, "pattern": LANDING_PATTERN},
            "The portal page to land on: a page id (default my_account), or a document's path such as /invoices/3.",
            hint=LANDING_HINT,
        ),
        Field("single_use", {"type": "boolean"}, "Whether the link works only once (adds a jti; default false)."),
        Field("issuer", nonblank(200), 'The iss claim (default "billportal-api").', hint=NAME_HINT),
    ),
)

SIGN_IN_LINK: Final = Shape(
    "SignInLink",
    "A signed sign-in URL: send the customer's browser to it before it expires.",
    (
        read_only("object", const("sign_in_link"), 'Always "sign_in_link".'),
        read_only("url", {"type": "string"}, "The sign-in URL (a secret until it expires: never log it)."),
        read_only("customer_id", ID, "Whom it signs in."),
        read_only("expires_at", TIME, "When it stops working (UNIX seconds)."),
        read_only("kid", {"type": "string"}, "The SSO key that signed it."),
        read_only("single_use", {"type": "boolean"}, "Whether it works only once."),
        read_only("redirect_to", nullable({"type": "string"}), "The page it lands on, as asked."),
    ),
)

SSO_KEY: Final = Shape(
    "SsoKey",
    "One of the company's SSO keys (never the secret itself).",
    (
        read_only("object", const("sso_key"), 'Always "sso_key".'),
        read_only("kid", {"type": "string"}, "The key id: put it in the JWT header as kid to name the key."),
        read_only(
            "state",
            {"type": "string", "enum": ["active", "retiring", "revoked"]},
            "active signs and verifies; retiring verifies until retiring_until; revoked does nothing.",
        ),
        read_only("weak", {"type": "boolean"}, "Whether the key is shorter than 32 bytes (imported)."),
        read_only("created_at", TIME, "When it was made."),
        read_only("last_used_at", nullable(TIME), "When it last verified a sign-in (to the minute)."),
        read_only("retiring_until", nullable(TIME), "When a retiring key stops verifying."),
        read_only("revoked_at", nullable(TIME), "When it was revoked."),
    ),
)


MAIL_SETTINGS: Final = Shape(
    "MailSettings",
    "Which kinds of email the company sends (true: sent). Send only those to change.",
    tuple(
        Field(kind.value, {"type": "boolean"}, info.label + ".") for kind, info in KINDS.items() if info.configurable
    ),
)


def _company_fields() -> tuple[Field, ...]:
    return (
        read_only("object", const("company"), 'Always "company".'),
        read_only("username", {"type": "string"}, "The company's portal subdomain: {username}.{base domain}."),
        Field("name", nonblank(200), "The name customers see in the portal's header.", hint=NAME_HINT),
        Field("legal_name", text(200), "The seller's legal name on documents and PDFs (default: name)."),
        Field("address_line1", text(200), "The seller's address, first line."),
        Field("address_line2", text(200), "The seller's address, second line."),
        Field("city", text(100), "City."),
        Field("postal_code", text(32), "Postal code."),
        Field(
            "region",
            text(100),
            "State or region: one of the country's ISO 3166-2 subdivisions where they are known (NM, US-NM or"
            " New Mexico, kept as NM).",
        ),
        Field(
            "country",
            {"type": "string", "maxLength": 2, "pattern": "^$|^[A-Za-z]{2}$"},
            "ISO 3166-1 alpha-2 country code, such as US.",
            hint="must be an ISO 3166-1 alpha-2 country code such as US, or empty",
        ),
        Field(
            "tax_id",
            {"type": "string", "maxLength": 64, "pattern": f"^$|^{TAX_ID}$"},
            "The seller's tax id (VAT, EIN, ...), on every document.",
            hint="must be letters and digits, with spaces, dots, hyphens or slashes, or empty",
        ),
        Field("support_email", EMAIL, "Where customers write for help.", hint="must be an e-mail address, or empty"),
        Field("support_phone", text(64), "Where customers call for help."),
        Field("time_zone", nonblank(64), "IANA time zone the portal shows times in, such as America/Denver."),
        Field("default_currency", CURRENCY, "ISO 4217 currency of new customers.", hint=CURRENCY_HINT),
        Field(
            "accent_color",
            {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
            "The portal's accent colour, #rrggbb: white text on it must reach a 4.5:1 contrast.",
            hint="must be a colour written #rrggbb",
        ),
        Field(
            "payment_instructions",
            text(2000, TEXT),
            "How to pay offline (bank details...): on the Pay page and every invoice and its PDF.",
        ),
        Field("footer_text", text(500, TEXT), "Text at the foot of every portal page."),
        read_only(
            "logo_url",
            nullable({"type": "string"}),
            "The logo's address on the portal (upload it in the dashboard or with billportal company set --logo).",
        ),
        Field("mail_settings", {"shape": MAIL_SETTINGS}, "Which kinds of email the company sends (docs/email.md)."),
        Field(
            "email_sign_in",
            {"type": "boolean"},
            "Whether customers may ask the portal for a sign-in link by email (off by default; docs/integration.md).",
        ),
    )


COMPANY: Final = Shape(
    "Company",
    "The company's settings: what its customers see of it in the portal and on every document.",
    _company_fields(),
)

EMPTY_REQUEST: Final = Shape(
    "EmptyRequest",
    "An empty JSON object, {}: the operation takes no options, and a body of JSON is what no web form can send.",
    (),
)

SSO_KEY_ROTATION_REQUEST: Final = Shape(
    "SsoKeyRotationRequest",
    "How long the current key keeps verifying links after the rotation.",
    (
        Field(
            "grace_period",
            {"type": "string", "enum": list(GRACE_PERIODS)},
            "none, 1h, 24h (default) or 7d: deploy the new key to every backend within it.",
        ),
    ),
)

SSO_KEY_ROTATION: Final = Shape(
    "SsoKeyRotation",
    "A new active SSO key. The key is shown in this answer only: store it in your backend's secrets now.",
    (
        read_only("object", const("sso_key_rotation"), 'Always "sso_key_rotation".'),
        read_only("kid", {"type": "string"}, "The new key's id."),
        read_only("key", {"type": "string"}, "The new SSO key (HS256 secret: sign with its UTF-8 bytes)."),
        read_only("previous_kid", nullable({"type": "string"}), "The key that was active before."),
        read_only("retiring_until", nullable(TIME), "Until when the previous key still verifies links."),
    ),
)

SIGN_IN_EVENT: Final = Shape(
    "SignInEvent",
    "One sign-in attempt: its result and reason code (see docs/integration.md for every code).",
    (
        read_only("object", const("sign_in_event"), 'Always "sign_in_event".'),
        read_only("id", ID, "The event id (newer events have larger ids)."),
        read_only("at", TIME, "When (UNIX seconds)."),
        read_only("result", {"type": "string", "enum": ["success", "failure"]}, "success or failure."),
        read_only("reason", {"type": "string"}, "The reason code: ok, or why it failed."),
        read_only("customer_id", nullable(ID), "The customer named by the token, if it could be read."),
        read_only("contact_id", nullable(ID), "The customer's contact who signed in (by email), if one did."),
        read_only("issuer", nullable({"type": "string"}), "The token's iss claim."),
        read_only("kid", nullable({"type": "string"}), "The key named by, or that verified, the token."),
        read_only("jti", nullable({"type": "string"}), "The token's jti claim."),
        read_only("ip", {"type": "string"}, "The browser's address."),
        read_only("user_agent", {"type": "string"}, "The browser's user agent (first 300 characters)."),
        read_only(
            "method",
            {"type": "string", "enum": ["sso", "email"]},
            "How: sso (a signed link from the company's app) or email (an emailed link or code).",
        ),
    ),
)


# -- payment settings ----------------------------------------------------------------------------

_GATEWAY_DOC: Final = "none (customers pay offline), test (the built-in test gateway: test mode only) or stripe."
_HINT_DOC: Final = (
    f'The last 4 characters, as "…abcd" (null when not set, or shorter than {HINT_MIN_LENGTH} characters).'
)
PAYMENT_SETTINGS: Final = Shape(
    "PaymentSettings",
    "How the company's customers pay online. The gateway's secrets are write-only: only whether each is set, "
    "and its last 4 characters, are ever shown.",
    (
        read_only("object", const("payment_settings"), 'Always "payment_settings".'),
        read_only("gateway", {"type": "string", "enum": list(GATEWAYS)}, _GATEWAY_DOC),
        read_only("test_mode", {"type": "boolean"}, "Test mode: test cards only, no real money; the portal says so."),
        read_only("allow_partial", {"type": "boolean"}, "Whether customers may pay an amount of their choice."),
        read_only("allow_saved_methods", {"type": "boolean"}, "Whether customers may save cards."),
        read_only("allow_autopay", {"type": "boolean"}, "Whether customers may turn AutoPay on."),
        read_only("autopay_retry_days", {"type": "string"}, "Days after a failed AutoPay charge it is retried: 1,3,7."),
        read_only("publishable_key", {"type": "string"}, "The gateway's publishable key (Stripe: pk_...)."),
        read_only("api_base", {"type": "string"}, "The gateway's API base URL; empty for the gateway itself."),
        read_only("secret_key_set", {"type": "boolean"}, "Whether the gateway's secret key is stored (sealed)."),
        read_only("secret_key_hint", nullable({"type": "string"}), _HINT_DOC),
        read_only("webhook_secret_set", {"type": "boolean"}, "Whether the webhook signing secret is stored (sealed)."),
        read_only("webhook_secret_hint", nullable({"type": "string"}), _HINT_DOC),
        read_only("payment_instructions", {"type": "string"}, "How to pay offline, shown on the portal's Pay page."),
        read_only("updated_at", TIME, "When the payment settings last changed (0: never)."),
    ),
)

_SECRET: Final = {"type": "string", "minLength": 1, "maxLength": MAX_SECRET_LENGTH}
MAX_INSTRUCTIONS: Final = 5000
PAYMENT_SETTINGS_UPDATE: Final = Shape(
    "PaymentSettingsUpdate",
    "The changes to the payment settings: send only what changes. The secrets are sealed at once and never "
    "shown again.",
    (
        Field("gateway", {"type": "string", "enum": list(GATEWAYS)}, _GATEWAY_DOC),
        Field("test_mode", {"type": "boolean"}, "Test mode (needed for the built-in test gateway)."),
        Field("allow_partial", {"type": "boolean"}, "Whether customers may pay an amount of their choice."),
        Field("allow_saved_methods", {"type": "boolean"}, "Whether customers may save cards."),
        Field("allow_autopay", {"type": "boolean"}, "Whether customers may turn AutoPay on."),
        Field(
            "autopay_retry_days",
            text(64),
            "Up to five increasing day counts, such as 1,3,7 (empty: no retries).",
        ),
        Field("publishable_key", text(255), "The gateway's publishable key (Stripe: pk_...)."),
        Field(
            "api_base", text(2000), "An http(s) URL to point the company at a local stand-in; empty for the gateway."
        ),
        Field("secret_key", _SECRET, "The gateway's secret key (Stripe: sk_... or rk_...). Write-only."),
        Field("webhook_secret", _SECRET, "The gateway's webhook signing secret (Stripe: whsec_...). Write-only."),
        Field(
            "payment_instructions",
            text(MAX_INSTRUCTIONS, TEXT),
            "How to pay offline (bank details, checks), shown on the Pay page and on PDFs.",
        ),
    ),
)


# -- webhook endpoints and their delivery log -------------------------------------------------------

_EVENT_TYPES: Final = {
    "type": "array",
    "items": {"type": "string", "enum": list(EVENT_TYPES)},
    "minItems": 1,
    "maxItems": 50,
}
_ENDPOINT_FIELDS: Final = (
    read_only("object", const("webhook_endpoint"), 'Always "webhook_endpoint".'),
    read_only("id", ID, "The endpoint's id."),
    Field(
        "url",
        text(MAX_URL_LENGTH),
        "Where events are POSTed: an https URL reaching a public address (redirects are not followed).",
        required=True,
    ),
    Field("event_types", _EVENT_TYPES, "The event types sent to it.", required=True),
    Field("description", text(200), "What it is for (shown in the dashboard)."),
    Field(
        "enabled",
        {"type": "boolean"},
        "Whether events are sent to it; one failing for three days is turned off (set true to resume).",
    ),
    read_only("disabled_reason", {"type": "string"}, "Why it was turned off, if it was; empty otherwise."),
    read_only("previous_secret_until", nullable(TIME), "Until when the secret before a rotation also signs."),
    read_only("created_at", TIME, "When it was added."),
    read_only("updated_at", TIME, "When it last changed."),
)
WEBHOOK_ENDPOINT: Final = Shape(
    "WebhookEndpoint", "Where the company's events are sent (never its signing secret).", _ENDPOINT_FIELDS
)
WEBHOOK_ENDPOINT_WITH_SECRET: Final = Shape(
    "WebhookEndpointWithSecret",
    "An endpoint and its new signing secret. The secret is in this answer only: store it in your receiver now.",
    (
        *_ENDPOINT_FIELDS,
        read_only(
            "secret",
            {"type": "string"},
            "The signing secret (whsec_...): verify the webhook-signature header with any Standard Webhooks library.",
        ),
    ),
)
WEBHOOK_ROTATION_REQUEST: Final = Shape(
    "WebhookSecretRotationRequest",
    "How long the secret being replaced keeps signing beside the new one.",
    (Field("overlap", integer(0, MAX_OVERLAP), "Seconds (default 86400); 0 stops the old secret at once."),),
)
WEBHOOK_ATTEMPT: Final = Shape(
    "WebhookAttempt",
    "One try to deliver an event.",
    (
        read_only("at", TIME, "When it was tried."),
        read_only("status_code", nullable(integer(100, 599)), "The receiver's HTTP status; null: no answer."),
        read_only("duration_ms", integer(0, 10**9), "How long the receiver took to answer, in milliseconds."),
        read_only("error", {"type": "string"}, "Why it failed (empty on success)."),
        read_only("response_head", {"type": "string"}, "The first 512 bytes of the answer's body."),
    ),
)
WEBHOOK_DELIVERY: Final = Shape(
    "WebhookDelivery",
    "One event sent to one endpoint, and its attempts.",
    (
        read_only("object", const("webhook_delivery"), 'Always "webhook_delivery".'),
        read_only("id", ID, "The delivery's id (newest first in lists)."),
        read_only("event_id", {"type": "string"}, "The event's id: the webhook-id header."),
        read_only("type", {"type": "string", "enum": list(EVENT_TYPES)}, "The event type."),
        read_only(
            "state",
            {"type": "string", "enum": ["pending", "delivered", "failed"]},
            "pending: to be tried (again); delivered: answered 2xx; failed: retried for three days in vain.",
        ),
        read_only("attempts", {"type": "array", "items": WEBHOOK_ATTEMPT}, "Every try, oldest first."),
        read_only("next_attempt_at", nullable(TIME), "When a pending delivery is tried next."),
        read_only("created_at", TIME, "When it was queued (or queued again)."),
    ),
)
WEBHOOK_REDELIVERY_REQUEST: Final = Shape(
    "WebhookRedeliveryRequest",
    "What to send again: one event by its id, or every failed one since a time (send one of the two).",
    (
        Field("event_id", text(40), "The event's id (webhook-id)."),
        Field("failed_since", TIME, "Every event that failed at or after this time (UNIX seconds)."),
    ),
)
WEBHOOK_REDELIVERY: Final = Shape(
    "WebhookRedelivery",
    "How many events will be sent again (at once, in order per object).",
    (
        read_only("object", const("webhook_redelivery"), 'Always "webhook_redelivery".'),
        read_only("count", integer(0, 10**9), "How many."),
    ),
)


def list_of(shape: Shape) -> Shape:
    """One page of a list, oldest first; ask for the next with ``cursor=next_cursor``."""
    return Shape(
        f"{shape.name}List",
        f"One page of {shape.name} objects.",
        (
            read_only("object", const("list"), 'Always "list".'),
            read_only("data", {"type": "array", "items": shape}, "The objects on this page."),
            read_only("has_more", {"type": "boolean"}, "Whether another page follows."),
            read_only(
                "next_cursor",
                nullable({"type": "string"}),
                "Pass as cursor (with the same filters) for the next page; null on the last page.",
            ),
        ),
    )


ERROR: Final = Shape(
    "ErrorBody",
    "What went wrong, for programs (code) and for people (message).",
    (
        read_only("code", {"type": "string", "enum": sorted(ERROR_CODES)}, "A stable error code (see the table)."),
        read_only("message", {"type": "string"}, "What is wrong and what to do, in English."),
        read_only("field", nullable({"type": "string"}), "The request field at fault, such as lines[0].quantity."),
    ),
)
ERROR_RESPONSE: Final = Shape("Error", "Every error answer.", (read_only("error", {"shape": ERROR}, "The error."),))


def api_object(kind: str, record: Any, *, bounced: bool = False) -> dict[str, Any]:
    """A stored record as the API's answer reads it: its fields, ``object``, and what is worked out from them."""
    values = dataclasses.asdict(record)
    for part in ("lines", "applications", "refunds"):
        if part in values:
            values[part] = list(values[part])  # asdict keeps tuples; JSON arrays are lists
    values["object"] = kind
    if kind == "customer":
        values["email_bounced"] = bounced
    if kind == "payment":
        values["unapplied"] = record.unapplied
        values["refunds"] = [{**refund, "object": "refund"} for refund in values["refunds"]]
    return values
