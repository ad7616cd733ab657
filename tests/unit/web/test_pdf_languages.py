"""Every shipped language's strings drawn into a PDF come back out intact (pypdf reads them)."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from importlib import resources

import pytest
from babel.messages.pofile import read_po
from pypdf import PdfReader

from billportal.core import i18n
from billportal.web.pdf import DocumentPDF
from tests import factories
from tests.conftest import World, run

_ARROWS = "←"  # the web pages' back links only: never in a PDF


def _translations(code: str) -> list[str]:
    path = resources.files("billportal") / "locale" / code / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=code)
    found: list[str] = []
    for message in catalog:
        if message.id:
            strings = [message.string] if isinstance(message.string, str) else list(message.string or ())
            found.extend(text for text in strings if text and not set(text) & set(_ARROWS))
    return sorted(found, key=len, reverse=True)


def _squeezed(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("code", list(i18n.LOCALES))
def test_every_translation_round_trips_through_a_pdf(world: World, code: str) -> None:
    strings = _translations(code)
    longest = strings[:12]
    company = replace(world.acme, name="Müller & Söhne — Façade Ltd")
    customer = run(factories.customer(world.store, world.acme.id, now=world.clock.now, name="José Gonçalves Ærø"))
    with i18n.speaking(code):
        doc = DocumentPDF(company, customer, longest[0][:40], "INV-1")
        doc.parties([(text[:20], text[:30]) for text in longest[:3]])
        doc.table(["A", "B"], [[text, "1"] for text in longest[:6]], [80, 20], numeric_from=1)
        doc.totals([(text[:30], "1.234,56 €") for text in longest[:2]])
        for text in strings:
            doc.paragraph(text)
        content = doc.output()
    reader = PdfReader(io.BytesIO(content))
    # Each page's footer is left out: a paragraph that runs onto the next page reads on across it.
    footer = f"{company.seller_name} - "
    lines = [line for page in reader.pages for line in page.extract_text().splitlines()]
    extracted = _squeezed(" ".join(line for line in lines if not line.startswith(footer)))
    for text in strings:
        assert _squeezed(text) in extracted, (code, text)
    assert "José Gonçalves Ærø" in extracted
    assert "1.234,56 €" in extracted
    assert re.search(r"Müller & Söhne", extracted)
