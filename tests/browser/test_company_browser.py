"""A new company set up through the dashboard alone, in a real browser: its admin sets the seller's details,
the payment instructions and the logo, and its customer's portal shows them.

Screenshots go to docs/screenshots/dashboard-home-checklist.png, dashboard-company.png and
portal-company-pay.png (shown in docs/dashboard.md).
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests import factories
from tests.browser.conftest import LiveServer, screenshot

EMAIL = "bill@initech.example"
PASSWORD = "a long passphrase for initech"
INSTRUCTIONS = "Wire transfer to Initech Bank\nIBAN US00 9999 0000 1111\nQuote your customer number."


def test_an_admin_sets_the_logo_and_payment_instructions_and_the_portal_shows_them(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    live_server.cli("tenant", "create", "initech", "--name", "Initech")
    live_server.cli("customer", "create", "--tenant", "initech", "--name", "Peter Gibbons", "--id", "501")
    admin = ("admin", "create", "--tenant", "initech", "--email", EMAIL, "--password-stdin")
    live_server.cli(*admin, stdin=PASSWORD + "\n")

    # Signing in lands on the home page and its checklist: nothing is set up yet.
    page.goto(live_server.url("dashboard", "/sign-in"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url("dashboard", "/"))
    checklist = page.get_by_role("region", name="Setting up")
    expect(checklist).to_contain_text("6 things left")
    expect(checklist.get_by_role("link", name="Logo")).to_be_visible()

    # Settings > Company: a colour too light for white text is refused with its ratio, and nothing is saved.
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Company").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Company")
    page.get_by_label("Accent colour").fill("#fde047")
    page.get_by_role("button", name="Save company settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(page.locator("#accent_color-error")).to_contain_text("contrast of 1.3:1")

    # The seller's details and the payment instructions.
    page.get_by_label("Accent colour").fill("#7c3aed")
    page.get_by_label("Legal name").fill("Initech, LLC")
    page.get_by_label("Address line 1").fill("4120 Freidrich Lane")
    page.get_by_label("City").fill("Austin")
    page.get_by_label("Postal code").fill("78744")
    page.get_by_label("Country").select_option("US")
    page.get_by_label("State or region").fill("Texas")
    page.get_by_label("Tax id").fill("US 74-1234567")
    page.get_by_label("Support e-mail").fill("billing@initech.example")
    page.get_by_label("Time zone").fill("America/Chicago")
    page.get_by_label("Payment instructions").fill(INSTRUCTIONS)
    page.get_by_label("Portal footer").fill("Initech: synergy in billing.")
    page.get_by_role("button", name="Save company settings").click()
    expect(page.get_by_role("status")).to_contain_text("The company settings are saved.")
    expect(page.get_by_label("State or region")).to_have_value("TX")

    # An SVG is refused; a PNG is taken, and previewed.
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', encoding="utf-8")
    page.get_by_label("Logo file").set_input_files(str(svg))
    page.get_by_role("button", name="Upload logo").click()
    expect(page.locator("#logo-error")).to_contain_text("must be a PNG or JPEG image")
    logo = tmp_path / "initech.png"
    logo.write_bytes(factories.logo_png(360, 120, (124, 58, 237)))
    page.get_by_label("Logo file").set_input_files(str(logo))
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_role("status")).to_contain_text("The logo is saved.")
    preview = page.get_by_role("img", name="The current logo of Initech")
    expect(preview).to_be_visible()
    assert preview.evaluate("image => image.naturalWidth") == 360
    screenshot(page, "dashboard-company")

    # Home: only the first customer's sign-in is left.
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Home").click()
    expect(page.get_by_role("region", name="Setting up")).to_contain_text("1 thing left")
    screenshot(page, "dashboard-home-checklist")

    # The customer's portal: the logo in the header, the instructions and the seller on the Pay page.
    url = live_server.cli(
        "sso-url", "--tenant", "initech", "--customer", "501", "--base-url", f"http://localhost:{live_server.port}"
    )
    page.goto(url)
    header_logo = page.locator("header .brand-logo")
    expect(header_logo).to_be_visible()
    assert header_logo.evaluate("image => image.complete && image.naturalWidth") == 360
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Pay", exact=True).click()
    how = page.get_by_role("region", name="How to pay")
    expect(how).to_contain_text("IBAN US00 9999 0000 1111")
    expect(how).to_contain_text("Initech, LLC")
    expect(how).to_contain_text("4120 Freidrich Lane")
    expect(how).to_contain_text("US 74-1234567")
    footer = page.get_by_role("contentinfo")
    expect(footer).to_contain_text("Initech: synergy in billing.")
    expect(footer).to_contain_text("billing@initech.example")
    screenshot(page, "portal-company-pay")
