"""The portal in a real browser: a customer's journey from a CLI sign-in link to signing out.

Each page's screenshot is written to docs/screenshots/portal-*.png (shown in the README).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, screenshot
from tests.functional.portal_world import pdf_text


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Portal").get_by_role("link", name=name, exact=True).click()


def test_a_customers_journey_through_the_portal(live_server: LiveServer, page: Page) -> None:
    url = live_server.cli(
        "sso-url", "--tenant", "acme", "--customer", "1234", "--base-url", f"http://localhost:{live_server.port}"
    )
    page.goto(url)

    # My Account: the balance, the open invoices, recent payments.
    expect(page).to_have_url(live_server.url("acme", "/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Wile E. Coyote")
    expect(page.get_by_role("heading", name="Balance due")).to_be_visible()
    expect(page.get_by_role("heading", name="Recent payments")).to_be_visible()
    expect(page.locator(".topbar")).to_contain_text("Acme Corporation")
    screenshot(page, "portal-my-account")

    # The keyboard reaches the skip link first, and it leads to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # Invoices: the list, then one invoice and its PDF.
    nav(page, "Invoices")
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")
    screenshot(page, "portal-invoices")
    page.get_by_label("Status").select_option("paid")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/invoices\?status=paid"))
    first = page.get_by_role("table").get_by_role("link").first
    number = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Invoice {number}")
    expect(page.get_by_role("heading", name="Payments and credits applied")).to_be_visible()
    screenshot(page, "portal-invoice")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"invoice-{number}.pdf"
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF-")
    assert f"/Title (Invoice {number})".encode() in content
    assert number in pdf_text(content)
    assert "Wile E. Coyote" in pdf_text(content)

    # A statement for the current month, then the open items.
    nav(page, "Statements")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Statement for")
    expect(page.get_by_text("Closing balance").first).to_be_visible()
    screenshot(page, "portal-statement-balance-forward")
    page.get_by_role("link", name="Open items").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Open items")
    screenshot(page, "portal-statement-open-item")

    # Billing details: a mistake is shown beside its field, then the new address is saved.
    nav(page, "Billing details")
    page.get_by_label("City").fill("")
    page.get_by_role("button", name="Save billing details").click()
    expect(page.locator("#city-error")).to_have_text("Enter city.")
    expect(page.get_by_label("City")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "portal-billing-info-errors")
    page.get_by_label("Address line 1").fill("42 Canyon Road")
    page.get_by_label("City").fill("Santa Fe")
    page.get_by_label("Postal code").fill("87501")
    page.get_by_role("button", name="Save billing details").click()
    expect(page.get_by_role("status")).to_contain_text("Your billing details were saved.")
    page.reload()
    expect(page.get_by_label("Address line 1")).to_have_value("42 Canyon Road")
    expect(page.get_by_label("City")).to_have_value("Santa Fe")
    screenshot(page, "portal-billing-info")
    nav(page, "My account")
    expect(page.locator("address").first).to_contain_text("42 Canyon Road")

    # An estimate awaiting approval is approved after a confirmation showing the total; who and when are shown.
    nav(page, "Estimates")
    screenshot(page, "portal-estimates")
    page.get_by_role("row", name=re.compile("Awaiting approval")).get_by_role("link").first.click()
    screenshot(page, "portal-estimate")
    total = page.locator("tfoot tr").last.locator("td").last.inner_text()
    page.get_by_role("link", name="Approve estimate…").click()
    expect(page.locator("#approval-total")).to_have_text(total)
    page.get_by_label("Your full name").fill("Wile E. Coyote")
    page.get_by_role("button", name=f"Approve for {total}").click()
    expect(page.locator("#approval-status")).to_contain_text("Approved by Wile E. Coyote on")
    expect(page.get_by_role("link", name="Approve estimate…")).to_have_count(0)

    # Payments, a receipt, credit notes and how to pay.
    nav(page, "Payments")
    screenshot(page, "portal-payments")
    page.get_by_role("table").get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Payment receipt")
    screenshot(page, "portal-payment")
    nav(page, "Credit notes")
    screenshot(page, "portal-credit-notes")
    page.get_by_role("table").get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Credit note")
    screenshot(page, "portal-credit-note")
    nav(page, "Pay")
    expect(page.get_by_role("heading", name="Other ways to pay")).to_be_visible()
    expect(page.get_by_text("First Desert Bank")).to_be_visible()
    screenshot(page, "portal-pay")

    # Sign out; Back shows no customer data.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(live_server.url("acme", "/signed-out"))
    expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Please sign in")
    body = page.locator("body").inner_text()
    for private in ("Wile", "Coyote", "Canyon Road", "First Desert Bank", "$"):
        assert private not in body
    screenshot(page, "portal-back-after-sign-out")


def test_the_portal_on_a_phone(live_server: LiveServer, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    url = live_server.cli(
        "sso-url",
        "--tenant",
        "acme",
        "--customer",
        "1235",
        "--redirect-to",
        "invoices",
        "--base-url",
        f"http://localhost:{live_server.port}",
    )
    page.goto(url)
    expect(page).to_have_url(live_server.url("acme", "/invoices"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")
    # Nothing is wider than the screen: no sideways scrolling to read a page.
    for path in ("/", "/invoices", "/statements/balance-forward", "/billing-info"):
        page.goto(live_server.url("acme", path))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide"
    page.goto(live_server.url("acme", "/"))
    screenshot(page, "portal-my-account-phone")


PHONE_BAR_MAX = 72  # px: one line (brand, menu, sign out) is 59 px; the links in the bar took three lines, 166 px


def test_on_a_phone_the_navigation_is_a_compact_menu(live_server: LiveServer, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    url = live_server.cli(
        "sso-url", "--tenant", "acme", "--customer", "1235", "--base-url", f"http://localhost:{live_server.port}"
    )
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    bar = page.locator(".topbar").bounding_box()
    assert bar is not None
    assert bar["height"] <= PHONE_BAR_MAX, f"the bar is {bar['height']}px high"
    portal_nav = page.get_by_role("navigation", name="Portal")
    expect(portal_nav).to_have_count(0)  # closed: no links in the way
    menu = page.locator("summary", has_text="Menu")
    expect(menu).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    menu.click()
    expect(portal_nav).to_be_visible()
    expect(portal_nav.get_by_role("link")).to_have_count(9)  # with Security
    screenshot(page, "portal-menu-phone")
    portal_nav.get_by_role("link", name="Invoices", exact=True).click()
    expect(page).to_have_url(live_server.url("acme", "/invoices"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")
    # On a wide screen the links are in the bar and there is no menu.
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.locator("summary", has_text="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Portal").get_by_role("link")).to_have_count(9)
    wide = page.locator(".topbar").bounding_box()
    assert wide is not None
    assert wide["height"] <= 2 * PHONE_BAR_MAX - 40  # the links on one line, the sign-out at most below them


def test_the_favicon_does_not_404(live_server: LiveServer, page: Page) -> None:
    response = page.goto(live_server.url("acme", "/favicon.ico"))  # chromium resolves *.localhost
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"] == "image/x-icon"
