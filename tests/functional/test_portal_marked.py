"""Every string a customer reads goes through gettext: each portal page, rendered in a pseudo-locale
that brackets every translated string, shows no words outside the brackets but the data it is about."""

from __future__ import annotations

import gettext
import re
from functools import lru_cache
from html import unescape

import pytest
from babel import Locale

from billportal.core import i18n
from tests.conftest import World
from tests.functional.portal_world import Docs, add_documents, signed_in
from tests.functional.test_portal_locales import EMAIL_SIGN_IN_PAGES, PAGES, open_everything

# What the shared test world holds (tests/conftest.py, tests/functional/portal_world.py): names, not interface.
_WORLD: tuple[str, ...] = ("Acme Corporation", "Wile E. Coyote", "wile@coyote.example.com", "Giant magnet")
_WORLD += ("Rocket skates", "Portable hole", "Returned giant magnet", "billportal", "UTC")  # the product, the time zone
_WORD = re.compile(r"[^\W\d_][\w'\u2019-]*")
_NUMBER = re.compile(r"[A-Z]+-[0-9]+")  # document and customer numbers: INV-0001, CUST-01234
_BRACKETED = re.compile(r"⟦[^⟦⟧]*⟧")


class Pseudo(gettext.NullTranslations):
    """Brackets every message: what is left outside them on a page was never translated."""

    def gettext(self, message: str) -> str:
        return f"⟦{message}⟧"

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return f"⟦{msgid1 if n == 1 else msgid2}⟧"


@pytest.fixture
def pseudo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "translations", lambda _code: Pseudo())


def _visible(html: str) -> str:
    """The text people read: tags, scripts and the hidden parts of the page dropped."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.DOTALL)
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    while _BRACKETED.search(text):
        text = _BRACKETED.sub(" ", text)
    return text


@lru_cache(maxsize=1)
def _data_words() -> frozenset[str]:
    """Words that are data, not interface: the world's names and details, and what CLDR names (countries, months)."""
    english = Locale.parse("en")
    names = [*english.territories.values(), *english.months["format"]["wide"].values()]
    names += [*english.months["format"]["abbreviated"].values(), *english.days["format"]["abbreviated"].values()]
    names += [*i18n.LOCALES.values(), *_WORLD]
    return frozenset(word for name in names for word in _WORD.findall(name))


@pytest.mark.usefixtures("pseudo")
def test_every_portal_page_marks_every_string(world: World) -> None:
    docs: Docs = add_documents(world)
    open_everything(world)
    client = signed_in(world)
    pages = [*PAGES, f"/invoices/{min(docs.invoices.values())}", f"/estimates/{min(docs.estimates.values())}"]
    pages += [f"/payments/{min(docs.payments.values())}", f"/credit-notes/{min(docs.credit_notes.values())}"]
    left: dict[str, list[str]] = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        words = set(_WORD.findall(_visible(response.text))) - _data_words()
        words = {word for word in words if not _NUMBER.fullmatch(word)}
        if words:
            left[path] = sorted(words)
    assert not left


@pytest.mark.usefixtures("pseudo")
def test_the_sign_in_and_error_pages_mark_every_string(world: World) -> None:
    docs: Docs = add_documents(world)
    open_everything(world)
    visitor = world.client("acme")
    answers = [
        *(visitor.get(path) for path in EMAIL_SIGN_IN_PAGES),
        visitor.post("/login/email", data={"email": "nobody@example.com"}),
        visitor.post("/login/code", data={"email": "nobody@example.com", "code": "123456"}),
        visitor.get("/signed-out"),
        visitor.get("/invoices"),  # sign-in needed
        visitor.get("/login/not-a-token"),
        signed_in(world).get(f"/invoices/{max(docs.invoices.values()) + 1000}"),  # not found
    ]
    for response in answers:
        words = set(_WORD.findall(_visible(response.text))) - _data_words()
        assert not words, (response.url, sorted(words))
