"""A company set up from the dashboard alone, in a real browser, and axe-core on the dashboard's billing pages.

Screenshots go to docs/screenshots/dashboard-journey-*.png (shown in docs/dashboard.md). axe-core is
npm's package, installed by ``make browser-deps`` into tests/browser/node_modules.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.browser.conftest import ROOT, LiveServer, screenshot, sign_in_to_dashboard

EMAIL = "grace@acme.example"
PASSWORD = "a long passphrase for the journey"
DEVELOPER = "dev@acme.example"
INSTRUCTIONS = "Wire transfer to Acme Bank\nIBAN US00 1234 5678 9012\nQuote the invoice number."
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Page) -> list[str]:
    """Run axe-core on the page as it is; one line per violation and node."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `make browser-deps`")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = json.loads(page.evaluate("async () => JSON.stringify(await window.axe.run(document))"))
    assert results["passes"], "axe-core checked nothing"
    violations = results["violations"]
    return [f"{v['id']}: {n['target']} {n['failureSummary']}" for v in violations for n in v["nodes"]]


def test_an_admin_sets_up_a_customer_and_opens_their_portal(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    live_server.cli("admin", "create", "--tenant", "acme", "--email", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    sign_in_to_dashboard(page, live_server, EMAIL, PASSWORD)
    screenshot(page, "dashboard-journey-1-home")

    # The logo and the payment instructions.
    page.goto(live_server.url("dashboard", "/settings/company"))
    page.get_by_label("Payment instructions").fill(INSTRUCTIONS)
    page.get_by_role("button", name="Save company settings").click()
    expect(page.get_by_role("status")).to_contain_text("The company settings are saved.")
    logo = tmp_path / "acme.png"
    logo.write_bytes(factories.logo_png(240, 80, (29, 78, 216)))
    page.get_by_label("Logo file").set_input_files(str(logo))
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_role("status")).to_contain_text("The logo is saved.")
    screenshot(page, "dashboard-journey-2-company")

    # A new customer.
    page.goto(live_server.url("dashboard", "/customers/new"))
    page.get_by_label("Customer id", exact=True).fill("7001")
    page.get_by_label("Name", exact=True).fill("Marvin the Martian")
    page.get_by_label("Billing email", exact=True).fill("marvin@mars.example")
    screenshot(page, "dashboard-journey-3-customer-form")
    page.get_by_role("button", name="Create the customer").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Marvin the Martian")
    screenshot(page, "dashboard-journey-4-customer")

    # An invoice for them, issued.
    page.goto(live_server.url("dashboard", "/invoices/new"))
    page.get_by_label("Customer id").fill("7001")
    page.get_by_label("Number", exact=True).fill("INV-JOURNEY-1")
    page.get_by_label("Date", exact=True).fill("2026-11-30")
    page.get_by_label("Line 1 description").fill("Illudium Q-36 Explosive Space Modulator")
    page.get_by_label("Line 1 quantity").fill("1")
    page.get_by_label("Line 1 unit price").fill("1250.00")
    screenshot(page, "dashboard-journey-5-invoice-form")
    page.get_by_role("button", name="Issue", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("INV-JOURNEY-1")
    expect(page.locator("main")).to_contain_text("is issued")
    screenshot(page, "dashboard-journey-6-invoice")

    # Open the portal as the customer: the password again, in the new tab, then the portal.
    page.goto(live_server.url("dashboard", "/customers/7001"))
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Open the portal as this customer").click()
    portal = opened.value
    expect(portal.get_by_role("heading", name="Confirm your password")).to_be_visible()
    screenshot(portal, "dashboard-journey-7-sudo")
    portal.get_by_label("Password").fill(PASSWORD)
    portal.get_by_role("button", name="Confirm and open the portal").click()
    expect(portal.get_by_role("heading", level=1)).to_contain_text("Marvin the Martian")
    expect(portal.locator("header .brand-logo")).to_be_visible()
    assert portal.locator("header .brand-logo").evaluate("image => image.complete && image.naturalWidth") == 240
    expect(portal.locator("main")).to_contain_text("INV-JOURNEY-1")
    screenshot(portal, "dashboard-journey-8-portal")
    portal.get_by_role("navigation", name="Portal").get_by_role("link", name="Pay", exact=True).click()
    how = portal.get_by_role("region", name=re.compile("How to pay|Other ways to pay"))
    expect(how).to_contain_text("IBAN US00 1234 5678 9012")
    expect(portal.locator("main")).to_contain_text("INV-JOURNEY-1")
    screenshot(portal, "dashboard-journey-9-portal-pay")
    assert PASSWORD not in live_server.log()


PAGES = {
    "customers list": "/customers",
    "customer page": "/customers/7002",
    "customer form": "/customers/new",
    "customer edit form": "/customers/7002/edit",
    "invoices list": "/invoices",
    "invoice form": "/invoices/new",
    "payments list": "/payments",
    "import page": "/imports",
    "admins page": "/settings/admins",
    "email settings page": "/settings/email",
}


def test_the_billing_pages_have_no_axe_violations(live_server: LiveServer, page: Page) -> None:
    live_server.cli(
        "admin", "create", "--tenant", "acme", "--email", "axe@acme.example", "--password-stdin", stdin=PASSWORD + "\n"
    )
    live_server.cli("customer", "create", "--tenant", "acme", "--name", "Daffy Duck", "--id", "7002")
    sign_in_to_dashboard(page, live_server, "axe@acme.example", PASSWORD)
    found: dict[str, list[str]] = {}
    for name, path in PAGES.items():
        response = page.goto(live_server.url("dashboard", path))
        assert response is not None
        assert response.status == 200, name
        found[name] = axe_violations(page)
    page.goto(live_server.url("dashboard", "/invoices"))
    page.locator("main table a[href^='/invoices/']").first.click()
    expect(page).to_have_url(re.compile(r"/invoices/\d+$"))
    found["invoice page"] = axe_violations(page)
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_the_page_not_open_to_a_role_has_no_axe_violations(live_server: LiveServer, page: Page) -> None:
    live_server.cli(
        "admin",
        "create",
        "--tenant",
        "acme",
        "--email",
        DEVELOPER,
        "--role",
        "developer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    page.goto(live_server.url("dashboard", "/sign-in"))
    page.get_by_label("Email").fill(DEVELOPER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    response = page.goto(live_server.url("dashboard", "/customers"))
    assert response is not None
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("Not open to your role")
    assert axe_violations(page) == []
