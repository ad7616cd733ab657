"""The shipped locales: complete catalogs, the choice of a language, and money and dates by locale."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from importlib import resources
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from billportal.core import i18n
from billportal.core.clock import human_date, human_time
from billportal.core.money import format_money

ROOT = Path(__file__).resolve().parents[3]
LOCALE_DIR = resources.files("billportal") / "locale"


def _catalog(code: str):  # type: ignore[no-untyped-def]
    with (LOCALE_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=code)


def _ids(path: Path) -> set[str]:
    with path.open("rb") as source:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(source) if m.id}


def _extracted(mapping: str = "babel.cfg") -> set[str]:
    """The msgids `make messages` would extract now, from the code as it is (``mapping``: the domain's config)."""
    out = ROOT / "var" / f"test-{Path(mapping).stem}.pot"
    out.parent.mkdir(exist_ok=True)
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [str(pybabel), "extract", "--mapping-file", mapping, "--keywords", "N_", "-o", str(out), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return _ids(out)


@pytest.mark.parametrize("code", list(i18n.LOCALES))
def test_every_shipped_catalog_is_complete_and_has_no_fuzzy_entry(code: str) -> None:
    catalog = _catalog(code)
    assert not catalog.fuzzy
    ids = set()
    for message in catalog:
        if not message.id:
            continue
        ids.add(message.id if isinstance(message.id, str) else message.id[0])
        assert not message.fuzzy, (code, message.id)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), (code, message.id)
        assert not list(message.check(catalog)), (code, message.id)  # placeholders agree with the msgid
    assert ids >= _EXTRACTED, (code, sorted(_EXTRACTED - ids))


@pytest.mark.parametrize("code", list(i18n.LOCALES))
def test_every_compiled_catalog_is_the_one_its_po_compiles_to(code: str) -> None:
    """The server reads the .mo beside each .po (core/i18n.py): `make messages` writes it; a stale one fails."""
    compiled = BytesIO()
    write_mo(compiled, _catalog(code), use_fuzzy=False)
    shipped = LOCALE_DIR / code / "LC_MESSAGES" / "messages.mo"
    assert shipped.is_file(), f"{code}: no messages.mo; run make messages"
    assert shipped.read_bytes() == compiled.getvalue(), f"{code}: messages.mo is stale; run make messages"
    translated = next(m for m in _catalog(code) if m.id and isinstance(m.id, str) and m.string)
    assert i18n.translations(code).gettext(translated.id) == translated.string  # and the server reads it


_EXTRACTED: set[str] = set()


@pytest.fixture(autouse=True, scope="module")
def _extract() -> None:
    _EXTRACTED.update(_extracted())


def test_extraction_finds_the_portal_strings() -> None:
    assert {"My account", "Balance due", "Invoice %(number)s", "Page not found"} <= _EXTRACTED


def test_the_dashboards_template_is_current_and_apart_from_the_portals() -> None:
    """locale/dashboard.pot holds every admin's string (`make messages` after marking one); the portal's stay apart."""
    dashboard = _extracted("babel-dashboard.cfg")
    assert dashboard == _ids(ROOT / "src" / "billportal" / "locale" / "dashboard.pot")
    assert {"Customers", "Rotate key", "Accept the invitation", "Estimate %(number)s was approved"} <= dashboard
    # The admins' strings never reach the six shipped catalogs: they would lack translations there.
    assert "Accept the invitation" not in _EXTRACTED
    assert "Rotate key" not in _EXTRACTED


@pytest.mark.parametrize(
    ("locale", "currency", "amount", "expected"),
    [
        ("de", "EUR", 123456, "1.234,56\xa0€"),
        ("en_IE", "EUR", 123456, "€1,234.56"),
        ("en", "USD", 123456, "$1,234.56"),
        ("en", "USD", -500, "-$5.00"),
        ("fr", "EUR", 123456, "1\u202f234,56\xa0€"),
        ("es", "EUR", 123456, "1.234,56\xa0€"),
        ("pt_BR", "BRL", 123456, "R$\xa01.234,56"),
        ("nl", "EUR", 123456, "€\xa01.234,56"),
        ("en", "JPY", 1234, "¥1,234"),
        ("de", "JPY", 1234, "1.234\xa0¥"),
        ("en", "KWD", 1234567, "KWD1,234.567"),
        ("de", "KWD", 1234567, "1.234,567\xa0KWD"),
        ("fr_CA", "CAD", 123456, "1\xa0234,56\xa0$"),
    ],
)
def test_money_follows_the_locale_and_the_currency(locale: str, currency: str, amount: int, expected: str) -> None:
    assert format_money(amount, currency, locale) == expected


def test_money_and_dates_follow_the_request_language() -> None:
    with i18n.speaking("de"):
        assert format_money(123456, "EUR") == "1.234,56\xa0€"
        assert human_date(date(2026, 12, 1)) == "01.12.2026"
        assert human_time(None) == "nie"
    assert format_money(123456, "EUR") == "€1,234.56"
    assert human_date("2026-12-01") == "Dec 1, 2026"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "Dec 1, 2026"), ("de", "01.12.2026"), ("fr", "1 déc. 2026"), ("es", "1 dic 2026"), ("nl", "1 dec 2026")],
)
def test_dates_follow_the_locale(locale: str, expected: str) -> None:
    assert human_date(date(2026, 12, 1), locale) == expected


def test_a_time_keeps_its_zone_in_every_language() -> None:
    assert human_time(1800000000, "Europe/Paris", locale="de") == "15.01.2027, 09:00 CET"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en-US,fr;q=0.5", "en"),
        ("fr;q=0.4, nl;q=0.9", "nl"),
        ("pt-BR", "pt_BR"),
        ("pt-PT,pt;q=0.9", "pt_BR"),
        ("ja, zh", None),
        ("", None),
        ("*;q=abc,,;", None),
    ],
)
def test_accept_language_picks_the_best_shipped_locale(header: str, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


def test_the_first_shipped_candidate_wins() -> None:
    assert i18n.choose([None, "xx", "fr-CA", "de"]) == "fr"
    assert i18n.choose([None, "", "klingon"]) == "en"
    assert i18n.shipped("PT-br") == "pt_BR"
    assert i18n.shipped("x" * 100) is None
