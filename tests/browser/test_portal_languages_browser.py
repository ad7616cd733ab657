"""The portal in German and in French in a real browser, with the invoice PDF each one downloads.

Screenshots go to docs/screenshots/portal-my-account-{de,fr}.png and portal-invoice-pdf-{de,fr}.png
(the PDF's first page drawn by PDFium, Chromium's own PDF engine), shown in the README.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdfium2
import pytest
from playwright.sync_api import Browser, expect
from pypdf import PdfReader

from tests.browser.conftest import SCREENSHOTS, LiveServer, screenshot

# locale -> (the browser's language, My Account's link, the Invoices link, an invoice's heading word, money)
LANGUAGES = {
    "de": ("de-DE", "Mein Konto", "Rechnungen", "Rechnung", r"\d,\d{2}\s\$"),
    "fr": ("fr-FR", "Mon compte", "Factures", "Facture", r"\d,\d{2}\s\$"),
}


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_my_account_and_an_invoice_pdf_in_the_browsers_language(
    live_server: LiveServer, browser: Browser, code: str
) -> None:
    browser_locale, account, invoices, invoice_word, money = LANGUAGES[code]
    # The browser's own language: chromium sends it as Accept-Language with the pages' requests.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True, locale=browser_locale)
    page = context.new_page()
    url = live_server.cli(
        "sso-url", "--tenant", "acme", "--customer", "1234", "--base-url", f"http://localhost:{live_server.port}"
    )
    page.goto(url)
    expect(page).to_have_url(live_server.url("acme", "/"))
    expect(page.locator("html")).to_have_attribute("lang", code)
    nav = page.locator(".nav-wide nav")
    expect(nav.get_by_role("link", name=account, exact=True)).to_be_visible()
    expect(page.locator("main")).to_contain_text(re.compile(money))
    screenshot(page, f"portal-my-account-{code}")

    nav.get_by_role("link", name=invoices, exact=True).click()
    first = page.get_by_role("table").get_by_role("link").first
    number = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"{invoice_word} {number}")
    with page.expect_download() as download_info:
        page.locator("a[download]").first.click()
    content = Path(download_info.value.path()).read_bytes()
    text = " ".join(" ".join(part.extract_text() for part in PdfReader(io.BytesIO(content)).pages).split())
    assert f"{invoice_word} {number}" in text
    assert re.search(money, text)
    drawn = pypdfium2.PdfDocument(content)[0].render(scale=1.5).to_pil()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    drawn.save(SCREENSHOTS / f"portal-invoice-pdf-{code}.png", optimize=True)
    context.close()
