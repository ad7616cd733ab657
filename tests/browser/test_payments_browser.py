"""Paying an invoice and saving a card in a real browser, with the demo's built-in test gateway (test mode).

Screenshots go to docs/screenshots/portal-pay-*.png and portal-saved-cards.png (shown in the README).
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, screenshot


def test_a_customer_pays_an_invoice_by_card_and_saves_a_card(live_server: LiveServer, page: Page) -> None:
    url = live_server.cli(
        "sso-url", "--tenant", "acme", "--customer", "1235", "--base-url", f"http://localhost:{live_server.port}"
    )
    page.goto(url)
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Pay", exact=True).click()
    expect(page.get_by_role("note")).to_contain_text("Test mode.")
    expect(page.get_by_role("heading", name="Pay by card")).to_be_visible()

    # One chosen invoice, with the test card.
    page.get_by_label("The invoices I choose:").check()
    first = page.locator('input[type="checkbox"][name^="invoice_"]').first
    first.check()
    chosen = page.locator(f'label[for="{first.get_attribute("id")}"]').inner_text().split(":")[0]
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM / YY)").fill("12 / 30")
    page.get_by_label("Security code").fill("123")
    screenshot(page, "portal-pay-card")
    page.get_by_role("button", name="Pay now").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your payment was received")
    expect(page.get_by_role("status")).to_contain_text("with Visa ending 4242")
    expect(page.locator("main")).to_contain_text(chosen)
    screenshot(page, "portal-pay-paid")

    # Reloading the result shows it again (the page a resent form leads to, too).
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your payment was received")

    # A declined card says so.
    page.goto(live_server.url("acme", "/pay"))
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_label("Expiry (MM / YY)").fill("12 / 30")
    page.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Pay now").click()
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined. No money was taken.")

    # Save a card for later: listed with its brand, last 4 digits and expiry, as the default.
    page.goto(live_server.url("acme", "/pay"))
    page.get_by_role("main").get_by_role("link", name="Saved cards").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM / YY)").fill("04 / 31")
    page.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("status")).to_have_text("Your card is saved. It was not charged.")
    expect(page.get_by_role("table")).to_contain_text("Visa ending 4242")
    expect(page.get_by_role("table")).to_contain_text("04/2031")
    screenshot(page, "portal-saved-cards")
