"""ISO 3166 countries and their subdivisions (from pycountry): the rules of an address's country and region.

A country is its ISO 3166-1 alpha-2 code (``US``). Where ISO 3166-2 knows a
country's subdivisions, its region (a customer's ``state``) is one of them,
kept as the code after the country's prefix (``NM`` for ``US-NM``, as
addresses write it); elsewhere it is free text.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import TYPE_CHECKING

from babel import Locale

from billportal.core import i18n
from billportal.core.lazy import lazy_import

if TYPE_CHECKING:
    import pycountry
else:
    pycountry = lazy_import("pycountry")  # about 3.5 MB of ISO tables, read by the first form that needs them


@cache
def countries() -> tuple[tuple[str, str], ...]:
    """Every country as (code, name), in the order of their names."""
    found = [(country.alpha_2, getattr(country, "common_name", country.name)) for country in pycountry.countries]
    return tuple(sorted(found, key=lambda pair: pair[1].casefold()))


@cache
def _names() -> dict[str, str]:
    return dict(countries())


def country_name(code: str) -> str | None:
    """The country's name, or None if ``code`` is not an ISO 3166-1 alpha-2 code."""
    return _names().get(code)


@lru_cache(maxsize=16)
def _territories(locale: str) -> dict[str, str]:
    return dict(Locale.parse(locale).territories)


def local_name(code: str) -> str | None:
    """The country's name in the request's language (CLDR's), or None if ``code`` is not a country."""
    english = country_name(code)
    if english is None:
        return None
    return _territories(i18n.current()).get(code, english)


@cache
def _subdivisions() -> dict[str, tuple[tuple[str, str], ...]]:
    grouped: dict[str, set[tuple[str, str]]] = {}
    for division in pycountry.subdivisions:
        grouped.setdefault(division.country_code, set()).add((division.code.split("-", 1)[1], division.name))
    return {
        country: tuple(sorted(pairs, key=lambda pair: (pair[1].casefold(), pair[0])))
        for country, pairs in grouped.items()
    }


def subdivisions(country: str) -> tuple[tuple[str, str], ...]:
    """The country's subdivisions as (code without the country prefix, name), by name; empty if none are known."""
    return _subdivisions().get(country, ())


@cache
def _lookup(country: str) -> dict[str, str]:
    """Every spelling of a subdivision taken (its code, with or without prefix, its name; any case) -> its code."""
    spellings: dict[str, str] = {}
    for code, name in subdivisions(country):
        spellings[name.casefold()] = code
    for code, _ in subdivisions(country):
        spellings[code.casefold()] = code
        spellings[f"{country}-{code}".casefold()] = code
    return spellings


def region(country: str, text: str) -> str | None:
    """``text`` as a subdivision code of the country (``New Mexico`` or ``us-nm`` -> ``NM``); None if it names none.

    Text is returned as it is for a country whose subdivisions are not known.
    """
    if not subdivisions(country):
        return text
    return _lookup(country).get(text.casefold())
