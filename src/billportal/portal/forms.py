"""The fields of the forms customers send, each checked with a reason (the body is read by billportal.web.forms)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from billportal.core import countries, i18n
from billportal.core.bounds import TAX_ID
from billportal.core.i18n import N_
from billportal.services.gateways import CardEntry
from billportal.services.mail import ADDRESS_PATTERN

# Bidirectional overrides and isolates could make saved text read differently from what it is.
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(value: str) -> str:
    """One line of text: surrounding space trimmed, inner runs of space made one."""
    return " ".join(value.split())


def unsafe_character(value: str) -> bool:
    """Whether text holds a control, unassigned or direction-changing character."""
    return any(char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") for char in value)


@dataclass(frozen=True, slots=True)
class Field:
    """A text field of a form: its name, label and rules, and hints for the browser."""

    name: str
    label: str
    max_length: int
    required: bool = False
    input_type: str = "text"
    autocomplete: str = "off"
    hint: str = ""
    pattern: re.Pattern[str] | None = None
    pattern_error: str = ""
    upper: bool = False
    required_error: str = ""  # marked for the catalogs; "Enter billing name."

    def check(self, raw: str) -> tuple[str, str | None]:
        """The cleaned value and, if it cannot be saved, why (in the customer's language)."""
        _ = i18n.gettext
        value = clean_text(raw)
        if self.upper:
            value = value.upper()
        if unsafe_character(value):
            return value, _("%(label)s contains characters that cannot be saved.") % {"label": _(self.label)}
        if not value:
            return value, _(self.required_error or "This field is required.") if self.required else None
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return value, _(self.pattern_error)
        if len(value) > self.max_length:
            limit = {"label": _(self.label), "max": self.max_length}
            return value, _("%(label)s can be at most %(max)d characters.") % limit
        return value, None


CHOOSE_COUNTRY: Final = N_("Choose your country from the list.")
BILLING_INFO_FIELDS: Final = (
    Field(
        "name",
        N_("Billing name"),
        200,
        required=True,
        autocomplete="organization",
        required_error=N_("Enter billing name."),
    ),
    Field(
        "email",
        N_("Billing email"),
        254,
        input_type="email",
        autocomplete="email",
        pattern=re.compile(ADDRESS_PATTERN),  # what email is sent to (services/mail.py)
        pattern_error=N_("Enter an email address such as name@example.com."),
    ),
    Field(
        "phone",
        N_("Phone"),
        64,
        input_type="tel",
        autocomplete="tel",
        # At least five digits; + ( ) - . / and spaces between them; an extension at the end.
        pattern=re.compile(r"(?=(?:\D*\d){5})\+?[0-9 ().\-/]+(\s*(x|ext\.?)\s*[0-9]+)?", re.IGNORECASE),
        pattern_error=N_("Enter a phone number in digits, with + ( ) - . / or spaces if you like."),
    ),
    Field(
        "country",
        N_("Country"),
        2,
        required=True,
        required_error=N_("Enter country."),
        autocomplete="country",
        pattern=re.compile(r"[A-Z]{2}"),
        pattern_error=CHOOSE_COUNTRY,
        upper=True,
    ),
    Field(
        "address_line1",
        N_("Address line 1"),
        200,
        required=True,
        autocomplete="address-line1",
        required_error=N_("Enter address line 1."),
    ),
    Field("address_line2", N_("Address line 2"), 200, autocomplete="address-line2"),
    Field("city", N_("City"), 100, required=True, autocomplete="address-level2", required_error=N_("Enter city.")),
    Field("state", N_("State or province"), 100, autocomplete="address-level1"),
    Field(
        "postal_code",
        N_("Postal code"),
        32,
        autocomplete="postal-code",
        pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-]*"),
        pattern_error=N_("Enter the postal code in letters, digits, spaces or hyphens."),
    ),
    Field(
        "tax_id",
        N_("Tax or VAT id"),
        64,
        hint=N_("If you have one, as your tax authority writes it, such as DE123456789."),
        pattern=re.compile(TAX_ID),
        pattern_error=N_(
            "Enter the tax id in letters and digits, with spaces, dots, hyphens or slashes if it has them."
        ),
        upper=True,
    ),
)

APPROVER_FIELD: Final = Field(
    "approved_by",
    N_("Your full name"),
    200,
    required=True,
    autocomplete="name",
    required_error=N_("Enter your full name."),
)
DECLINE_REASON_FIELD: Final = Field(
    "reason", N_("Reason (optional)"), 1000, hint=N_("The company sees what you write here.")
)


def check_billing_info(form: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(values, errors) of a submitted billing details form; no errors means it can be saved."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in BILLING_INFO_FIELDS:
        values[field.name], error = field.check(form.get(field.name, ""))
        if error:
            errors[field.name] = error
    country, state = values["country"], values["state"]
    name = countries.country_name(country)
    if "country" not in errors and name is None:
        errors["country"] = i18n.gettext(CHOOSE_COUNTRY)
    elif name is not None and state and "state" not in errors:
        code = countries.region(country, state)
        if code is None:
            wrong = i18n.gettext("Choose a state or province of %(country)s from the list.")
            errors["state"] = wrong % {"country": name}
        else:
            values["state"] = code
    return values, errors


# -- paying by card (the built-in test gateway's form: card numbers are never kept, echoed or logged)

_CARD_EXPIRY: Final = re.compile(r"(0[1-9]|1[0-2])\s*/\s*([0-9]{2})")
CARD_FIELDS: Final = ("card_number", "card_expiry", "card_cvc")


def check_card(form: Mapping[str, str], today: str) -> tuple[CardEntry | None, dict[str, str]]:
    """The card typed into the form, or what is wrong with each field (``today`` is YYYY-MM-DD)."""
    errors: dict[str, str] = {}
    number = "".join(ch for ch in form.get("card_number", "")[:40] if ch not in " -")
    if not (number.isascii() and number.isdigit() and 12 <= len(number) <= 19):
        errors["card_number"] = i18n.gettext("Enter the 12 to 19 digits of the card number.")
    expiry = _CARD_EXPIRY.fullmatch(form.get("card_expiry", "")[:16].strip())
    month = year = 0
    if expiry is None:
        errors["card_expiry"] = i18n.gettext("Enter the expiry date as MM / YY.")
    else:
        month, year = int(expiry[1]), 2000 + int(expiry[2])
        if (year, month) < (int(today[:4]), int(today[5:7])):
            errors["card_expiry"] = i18n.gettext("This card has expired.")
    cvc = form.get("card_cvc", "")[:8].strip()
    if not (cvc.isascii() and cvc.isdigit() and 3 <= len(cvc) <= 4):
        errors["card_cvc"] = i18n.gettext("Enter the 3 or 4 digit security code from the back of the card.")
    if errors:
        return None, errors
    return CardEntry(number, month, year, cvc), {}
