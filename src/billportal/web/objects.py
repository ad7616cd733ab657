"""The shapes that the API and the dashboard's forms share: customers, documents, and the field types they are made of.

The API answers and checks customers and documents with these; the dashboard's forms check what is typed
with the same shapes (:func:`billportal.web.shapes.check_object`), so that both refuse the same input in the same words.
"""

from __future__ import annotations

from typing import Any, Final

from billportal.core import countries
from billportal.core.bounds import MAX_AMOUNT, MAX_ID, TAX_ID
from billportal.services.billing import PAYMENT_METHODS
from billportal.services.mail import ADDRESS_PATTERN
from billportal.web.shapes import Field, Shape, read_only

# Text on one line, without control characters; and the same with at least one visible character.
LINE: Final = r"^[^\u0000-\u001F\u007F]*$"
NONBLANK: Final = r"^[^\u0000-\u001F\u007F]*[^\u0000-\u0020\u007F][^\u0000-\u001F\u007F]*$"
# Text over several lines: tabs and line breaks allowed, other control characters not.
TEXT: Final = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*$"
MAX_TIME: Final = 253_402_300_799


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
CURRENCY: Final = {"type": "string", "minLength": 3, "maxLength": 3, "pattern": "^[A-Z]{3}$"}
EMAIL: Final = {
    "type": "string",
    "maxLength": 254,
    "pattern": r"^$|^[^@\u0000-\u0020\u007F]+@[^@\u0000-\u0020\u007F]+$",
}
CURRENCY_HINT: Final = "must be an ISO 4217 code in capitals, such as USD"
NAME_HINT: Final = "must be text on one line, with at least one visible character"


def object_field(name: str) -> Field:
    return read_only("object", const(name), f'Always "{name}".')


def timestamps() -> tuple[Field, Field]:
    return (
        read_only("created_at", TIME, "When it was created (UNIX seconds)."),
        read_only("updated_at", TIME, "When it last changed (UNIX seconds); see the updated_after filter."),
    )


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
        object_field("customer"),
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
        *timestamps(),
    ),
)

CONTACT: Final = Shape(
    "Contact",
    "A person at a customer's business who signs in to the portal with their own email (email sign-in), with a "
    "role: view (documents only), pay (also pays invoices and answers estimates), manage (also billing details, "
    "payment methods and the customer's contacts).",
    (
        read_only("id", ID, "The contact's id."),
        object_field("contact"),
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
        *timestamps(),
    ),
)


# -- documents: lines, invoices, payments and their refunds, credit notes, estimates --------------------

MAX_LINES: Final = 100
DATE: Final = {"type": "string", "format": "date"}
MONEY: Final = integer()
DATE_HINT: Final = "must be a date written YYYY-MM-DD"


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
        object_field("invoice"),
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
        *timestamps(),
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
        object_field("refund"),
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


PAYMENT: Final = Shape(
    "Payment",
    "Money received from a customer, applied to invoices; what is not applied stays as credit.",
    (
        read_only("id", ID, "The payment id."),
        object_field("payment"),
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
        *timestamps(),
    ),
)

CREDIT_NOTE_STATUSES: Final = ("draft", "open", "applied", "voided")
CREDIT_NOTE: Final = Shape(
    "CreditNote",
    "Credit given to a customer: applied to one invoice at once, or kept as account credit (open).",
    (
        read_only("id", ID, "The credit note id."),
        object_field("credit_note"),
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
        *timestamps(),
    ),
)

ESTIMATE_STATUSES: Final = ("draft", "sent", "approved", "declined", "voided")
ESTIMATE: Final = Shape(
    "Estimate",
    "A quote the customer can approve in the portal.",
    (
        read_only("id", ID, "The estimate id."),
        object_field("estimate"),
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
        *timestamps(),
    ),
)
