"""Paying through Stripe in a real browser: the portal's own page and script, with localstripe's fake stripe.js.

localstripe runs as a process (the ``localstripe`` fixture) and serves a stand-in for Stripe's
script at ``/js.stripe.com/v3/``: its card element is plain inputs, and it sets the card up with
the page's SetupIntent (``confirmCardSetup``), as Stripe.js does in Stripe's frame. The live
server's company is switched to Stripe with ``billportal payments configure`` (secrets on stdin).
No card number is ever posted to billportal: only the PaymentMethod id.

Screenshots go to docs/screenshots/portal-stripe-*.png (one is shown in the README).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import LiveServer, screenshot
from tests.stripe_support import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET

CUSTOMER = "1235"


@pytest.fixture(scope="module")
def stripe_server(live_server: LiveServer, localstripe: str) -> LiveServer:
    """The live server, its company taking cards through Stripe (here: localstripe)."""
    live_server.cli(
        "payments", "configure", "--tenant", "acme", "--gateway", "stripe", "--api-base", localstripe,
        "--publishable-key", PUBLISHABLE_KEY, "--secrets-stdin",
        stdin=f"{SECRET_KEY}\n{WEBHOOK_SECRET}\n",
    )  # fmt: skip
    return live_server


def _signed_in(server: LiveServer, page: Page) -> None:
    url = server.cli(
        "sso-url", "--tenant", "acme", "--customer", CUSTOMER, "--base-url", f"http://localhost:{server.port}"
    )
    page.goto(url)


def _money(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text))


def _fill_card(page: Page, number: str, month: str = "12", year: str = "30") -> None:
    """Type into localstripe's card element (its inputs are named by their placeholders)."""
    element = page.locator("#card-element")
    element.get_by_placeholder("number").fill(number)
    element.get_by_placeholder("exp_month").fill(month)
    element.get_by_placeholder("exp_year").fill(year)
    element.get_by_placeholder("cvc").fill("123")
    element.get_by_placeholder("postal_code").fill("10001")


def _posts_to_portal(page: Page, server: LiveServer) -> list[str]:
    """The bodies of the forms the page posts to billportal (to check that no card number is among them)."""
    bodies: list[str] = []

    def seen(request: Request) -> None:
        if request.method == "POST" and request.url.startswith(server.url("acme", "/")):
            bodies.append(request.post_data or "")

    page.on("request", seen)
    return bodies


def test_stripes_script_only_on_the_payment_pages(stripe_server: LiveServer, localstripe: str, page: Page) -> None:
    _signed_in(stripe_server, page)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else None)
    for path in ("/pay", "/payment-methods"):
        response = page.goto(stripe_server.url("acme", path))
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert f"script-src 'self' {localstripe};" in csp, path
        assert f"frame-src {localstripe};" in csp, path
        assert f"connect-src {localstripe}" in csp, path
        assert "unsafe-" not in csp, path
        # Stripe's (here localstripe's) card element is mounted: the script ran under this policy.
        expect(page.locator("#card-element").get_by_placeholder("number")).to_be_visible()
    assert violations == []
    for path in ("/", "/invoices", "/payments", "/billing-info", "/pay/unknown-token"):
        response = page.goto(stripe_server.url("acme", path))
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp, path
        assert "script-src" not in csp, path
        assert localstripe not in csp, path
        assert page.locator("script").count() == 0, path


def test_pay_decline_save_and_pay_with_the_saved_card(stripe_server: LiveServer, page: Page) -> None:
    _signed_in(stripe_server, page)
    posted = _posts_to_portal(page, stripe_server)
    page.goto(stripe_server.url("acme", "/pay"))
    expect(page.get_by_role("heading", name="Pay by card")).to_be_visible()
    due = _money(page.locator("#due-heading + .amount").inner_text())

    # One chosen invoice, with a new card typed into Stripe's card element.
    page.get_by_label("The invoices I choose:").check()
    first = page.locator('input[type="checkbox"][name^="invoice_"]').first
    first.check()
    chosen = page.locator(f'label[for="{first.get_attribute("id")}"]').inner_text()
    number, amount = chosen.split(":")[0], _money(chosen.split(":")[1].split(",")[0])
    _fill_card(page, "4242424242424242")
    screenshot(page, "portal-stripe-card")
    page.get_by_role("button", name="Pay now").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your payment was received")
    expect(page.get_by_role("status")).to_contain_text("with Visa ending 4242")
    expect(page.locator("main")).to_contain_text(number)
    balance = _money(page.locator("#balance-heading + .amount").inner_text())
    assert balance == due - amount
    screenshot(page, "portal-stripe-paid")
    [pay_form] = posted
    assert re.search(r"(^|&)payment_method=pm_\w+(&|$)", pay_form)
    page.goto(stripe_server.url("acme", "/invoices"))
    expect(page.get_by_role("row", name=re.compile(number))).to_contain_text("Paid")

    # A declined card: Stripe refuses to set it up, the page says so and nothing is posted or taken.
    page.goto(stripe_server.url("acme", "/pay"))
    _fill_card(page, "4000000000000002")
    page.get_by_role("button", name="Pay now").click()
    expect(page.locator("#card-errors")).to_have_text("Your card was declined.")
    screenshot(page, "portal-stripe-declined")
    assert len(posted) == 1
    page.reload()
    assert _money(page.locator("#due-heading + .amount").inner_text()) == balance

    # Save a card (set up, not charged), then pay the rest with it.
    page.get_by_role("main").get_by_role("link", name="Saved cards").click()
    _fill_card(page, "4242424242424242", "04", "31")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("status")).to_have_text("Your card is saved. It was not charged.")
    expect(page.get_by_role("table")).to_contain_text("Visa ending 4242")
    expect(page.get_by_role("table")).to_contain_text("04/2031")
    screenshot(page, "portal-stripe-saved-cards")
    page.goto(stripe_server.url("acme", "/pay"))
    assert _money(page.locator("#due-heading + .amount").inner_text()) == balance
    expect(page.get_by_label(re.compile(r"Visa ending 4242, expires 04/2031"))).to_be_checked()
    page.get_by_role("button", name="Pay now").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your payment was received")
    expect(page.get_by_role("status")).to_contain_text("with Visa ending 4242")
    assert _money(page.locator("#balance-heading + .amount").inner_text()) == 0
    assert len(posted) == 3
    assert all("4242424242424242" not in body and "4000000000000002" not in body for body in posted)
