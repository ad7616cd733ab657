"""The customer's language: the shipped locales, their catalogs, and the one per-request choice.

The catalogs are the ``.po`` files in ``billportal/locale/<locale>/LC_MESSAGES/messages.po``, and
beside each its compiled ``.mo``, which ``make messages`` writes and the repository keeps (nothing to
build in a fresh clone or a wheel; ``tests/unit/core/test_i18n.py`` fails while one is stale). The
server reads the ``.mo`` with the standard library on first use: compiling a ``.po`` with Babel there
took 8 ms of the first page's answer, and importing Babel's catalog tools 3 ms of start-up.
The language of a request lives in a context variable: each request runs in its own task, and a
thread-pool call (the PDFs) copies it, so requests never see one another's choice.
Adding a language is its catalog and one line in ``LOCALES``.

Two gettext domains: ``messages``, what customers read (the portal, its PDFs and emails; a catalog
per shipped locale), and ``dashboard``, what admins read (the dashboard and the emails to admins;
marked and extracted into ``locale/dashboard.pot``, but with no catalog yet, so it reads as English).
The domain lives beside the language: the dashboard's host speaks ``dashboard`` (app.py).
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Final

from babel import Locale, UnknownLocaleError

# locale code -> its name in its own language (the switcher shows these)
LOCALES: Final = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "pt_BR": "Português (Brasil)",
    "nl": "Nederlands",
}
DEFAULT_LOCALE: Final = "en"
DOMAIN: Final = "messages"  # the customers' strings
DASHBOARD_DOMAIN: Final = "dashboard"  # the admins' strings (English only for now)
DOMAINS: Final = (DOMAIN, DASHBOARD_DOMAIN)
LOCALE_DIR: Final = Path(__file__).resolve().parent.parent / "locale"

_current: ContextVar[str] = ContextVar("billportal_locale", default=DEFAULT_LOCALE)
_domain: ContextVar[str] = ContextVar("billportal_domain", default=DOMAIN)


@lru_cache(maxsize=512)
def shipped(code: str | None) -> str | None:
    """The shipped locale ``code`` names (``pt-br``, ``pt_BR`` and ``de-DE`` are accepted), or None."""
    if not code or len(code) > 35 or not code.isascii():
        return None
    cleaned = code.strip().replace("-", "_")
    lowered = {name.lower(): name for name in LOCALES}
    if cleaned.lower() in lowered:
        return lowered[cleaned.lower()]
    language = cleaned.split("_", 1)[0].lower()
    if language in LOCALES:
        return language
    # pt, pt_PT: the nearest shipped variant of the language
    return next((name for name in LOCALES if name.split("_", 1)[0] == language), None)


def negotiate(accept_language: str) -> str | None:
    """The best shipped locale for an ``Accept-Language`` header (quality values honoured), or None."""
    return _negotiate(accept_language[:1000])


@lru_cache(maxsize=512)  # most requests come with one of a handful of browsers' headers
def _negotiate(accept_language: str) -> str | None:
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            wanted.append((-quality, index, tag.strip()))
    preferred = [tag.replace("-", "_") for _q, _i, tag in sorted(wanted)]
    try:
        found = Locale.negotiate(preferred, list(LOCALES), sep="_")
    except (UnknownLocaleError, ValueError):
        found = None
    if found is not None:
        return shipped(str(found))
    return next((name for name in map(shipped, preferred) if name), None)


@lru_cache(maxsize=len(LOCALES) * len(DOMAINS))
def translations(code: str, domain: str = DOMAIN) -> _gettext.NullTranslations:
    """A shipped locale's compiled catalog of ``domain`` (English's msgids are its text; no file reads as none)."""
    if code not in LOCALES or domain not in DOMAINS:
        return _gettext.NullTranslations()
    try:
        with (LOCALE_DIR / code / "LC_MESSAGES" / f"{domain}.mo").open("rb") as compiled:
            return _gettext.GNUTranslations(compiled)
    except FileNotFoundError:
        return _gettext.NullTranslations()


def current() -> str:
    """The locale of this request (English outside one)."""
    return _current.get()


def activate(code: str) -> None:
    """This request speaks ``code`` from here on (a shipped locale; anything else is English)."""
    _current.set(code if code in LOCALES else DEFAULT_LOCALE)


@contextmanager
def speaking(code: str, domain: str = DOMAIN) -> Iterator[None]:
    """``code`` (in ``domain``) for the block only (tests, the CLI, emails, the PDFs of a chosen language)."""
    token = _current.set(code if code in LOCALES else DEFAULT_LOCALE)
    domain_token = _domain.set(domain if domain in DOMAINS else DOMAIN)
    try:
        yield
    finally:
        _domain.reset(domain_token)
        _current.reset(token)


def _catalog() -> _gettext.NullTranslations:
    return translations(_current.get(), _domain.get())


def gettext(message: str) -> str:
    """``message`` in the request's language ("" stays "": gettext would answer the catalog's header)."""
    return _catalog().gettext(message) if message else message


def ngettext(singular: str, plural: str, count: int) -> str:
    return _catalog().ngettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    return _catalog().pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, count: int) -> str:
    return _catalog().npgettext(context, singular, plural, count)


def N_(message: str) -> str:  # noqa: N802 (the conventional name extraction looks for)
    """Marks ``message`` for the catalogs where it is written; it is translated where it is shown."""
    return message


def html_lang(code: str | None = None) -> str:
    """The ``lang`` attribute of a page in ``code`` (``pt-BR``)."""
    return (code or _current.get()).replace("_", "-")


def choose(candidates: Iterable[str | None]) -> str:
    """The first shipped locale among ``candidates`` (the order of preference), else English."""
    return next((found for found in map(shipped, candidates) if found), DEFAULT_LOCALE)
