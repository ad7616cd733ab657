"""The shapes that the API and the dashboard's forms share: customers, and the field types they are made of.

The API answers and checks customers with :data:`CUSTOMER`; the dashboard's customer form checks what is typed
with the same shape (:func:`billportal.web.shapes.check_object`), so that both refuse the same input in the same words.
"""

from __future__ import annotations

from typing import Any, Final

from billportal.core import countries
from billportal.core.bounds import MAX_AMOUNT, MAX_ID, TAX_ID
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
