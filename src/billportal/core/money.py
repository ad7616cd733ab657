"""Money: integer minor units with an ISO 4217 code, formatted for people."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from babel.numbers import format_currency

from billportal.core import i18n
from billportal.core.lazy import lazy_import

if TYPE_CHECKING:
    import pycountry
else:
    pycountry = lazy_import("pycountry")  # about 3.5 MB of ISO tables, read by the first form that needs them

# Minor-unit exponents that differ from 2 (ISO 4217).
_EXPONENTS = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "UGX": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
    "JOD": 3,
}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def format_money(amount: int, currency: str = "USD", locale: str | None = None) -> str:
    """Minor units as the locale writes the currency (Babel, CLDR): ``$1,234.56``, ``1.234,56 €`` in German.

    ``locale``: the request's language when not given.
    """
    currency = currency.upper()
    value = Decimal(amount).scaleb(-exponent(currency))
    text: str = format_currency(value, currency, locale=locale or i18n.current(), currency_digits=True)
    return text


def parse_money(text: str, currency: str = "USD") -> int:
    """``parse_money("1,234.5", "USD") == 123450``; raises ValueError on anything else."""
    from decimal import Decimal, InvalidOperation

    cleaned = text.strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("not an amount") from None
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value() or not value.is_finite():
        raise ValueError("too many decimal places")
    return int(scaled)


def is_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency code, in capitals (``EUR``; not ``eur`` nor ``XYZ``)."""
    return len(code) == 3 and code.isascii() and code.isupper() and pycountry.currencies.get(alpha_3=code) is not None
