"""A pseudo-locale that brackets every translated string, and what is left outside the brackets.

Shared by the tests that every string people read is marked for translation: the portal's
(tests/functional/test_portal_marked.py) and the dashboard's (tests/functional/test_dashboard_marked.py).
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable
from functools import lru_cache
from html import unescape

import pytest
from babel import Locale

from billportal.core import i18n

# What the shared test world holds (tests/conftest.py, tests/functional/portal_world.py): names, not interface.
WORLD: tuple[str, ...] = ("Acme Corporation", "Wile E. Coyote", "wile@coyote.example.com", "Giant magnet")
WORLD += ("Rocket skates", "Portable hole", "Returned giant magnet", "billportal", "UTC")  # the product, the time zone
WORD = re.compile(r"[^\W\d_][\w'\u2019-]*")
NUMBER = re.compile(r"[A-Z]+-[0-9]+")  # document and customer numbers: INV-0001, CUST-01234
_BRACKETED = re.compile(r"⟦[^⟦⟧]*⟧")


class Pseudo(gettext.NullTranslations):
    """Brackets every message: what is left outside them on a page was never translated."""

    def gettext(self, message: str) -> str:
        return f"⟦{message}⟧"

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return f"⟦{msgid1 if n == 1 else msgid2}⟧"


@pytest.fixture
def pseudo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every domain's catalog, in every locale, is the pseudo-locale."""
    monkeypatch.setattr(i18n, "translations", lambda _code, _domain=i18n.DOMAIN: Pseudo())


def visible(html: str, literal: Iterable[str] = ()) -> str:
    """The text people read: tags, scripts and the hidden parts of the page dropped.

    ``literal``: elements whose text is verbatim (``code``: a claim's name, a header), never translated.
    """
    for tag in ("script", "style", *literal):
        html = re.sub(rf"<({tag})\b.*?</\1>", " ", html, flags=re.DOTALL)
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    while _BRACKETED.search(text):
        text = _BRACKETED.sub(" ", text)
    return text


@lru_cache(maxsize=1)
def _cldr_words() -> frozenset[str]:
    english = Locale.parse("en")
    names = [*english.territories.values(), *english.months["format"]["wide"].values()]
    names += [*english.months["format"]["abbreviated"].values(), *english.days["format"]["abbreviated"].values()]
    names += [*i18n.LOCALES.values(), *WORLD]
    return frozenset(word for name in names for word in WORD.findall(name))


def data_words(extra: Iterable[str] = ()) -> frozenset[str]:
    """Words that are data, not interface: the world's names and details, what CLDR names (countries, months)."""
    return _cldr_words() | {word for name in extra for word in WORD.findall(name)}


def unmarked(html: str, data: frozenset[str], literal: Iterable[str] = ()) -> list[str]:
    """The words of a page rendered in the pseudo-locale that are neither translated nor data."""
    words = set(WORD.findall(visible(html, literal))) - data
    return sorted(word for word in words if not NUMBER.fullmatch(word))
