"""The dashboard in a real browser: a key rotation that never breaks sign-in, and the log that explains it.

Screenshots go to docs/screenshots/dashboard-*.png (shown in docs/dashboard.md).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, screenshot

EMAIL = "ada@acme.example"
PASSWORD = "a long and secret passphrase"


def reveal_active_key(page: Page) -> str:
    page.get_by_role("row", name=re.compile("active")).get_by_role("button", name="Reveal").click()
    if page.get_by_role("heading", name="Confirm your password").is_visible():
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm and reveal").click()
    key = page.get_by_label("Key (the string to sign with, as it is)").input_value()
    page.get_by_role("link", name="Back to the keys").click()
    return key


def test_rotation_with_grace_then_revoke_as_a_company_admin(
    live_server: LiveServer, page: Page, browser: Browser
) -> None:
    live_server.cli("admin", "create", "--tenant", "acme", "--email", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    base_url = f"http://localhost:{live_server.port}"

    # Sign in to the dashboard.
    page.goto(live_server.url("dashboard", "/"))
    expect(page).to_have_url(live_server.url("dashboard", "/sign-in"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the dashboard")
    screenshot(page, "dashboard-sign-in")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url("dashboard", "/"))
    expect(page.get_by_role("heading", name="Setting up")).to_be_visible()
    page.get_by_role("link", name="Single Sign-On").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Single Sign-On")
    expect(page.locator(".topbar")).to_contain_text("Acme Corporation")
    cookie = next(c for c in page.context.cookies() if c["name"] == "__Host-bp_admin")
    assert cookie["httpOnly"]
    assert cookie["secure"]
    assert cookie["domain"] == "dashboard.localhost"

    # The key is masked; revealing it asks for the password again.
    old_kid = page.get_by_role("row", name=re.compile("active")).locator("code").first.inner_text()
    page.get_by_role("row", name=re.compile("active")).get_by_role("button", name="Reveal").click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    screenshot(page, "dashboard-reveal-confirm")
    page.get_by_role("link", name="Single Sign-On").click()
    old_key = reveal_active_key(page)

    # The company's backend made this link with the key it has now.
    old_link = live_server.cli(
        "sso-url",
        "--tenant",
        "acme",
        "--customer",
        "1234",
        "--key",
        "-",
        "--ttl",
        "10m",
        "--base-url",
        base_url,
        stdin=old_key,  # never on the command line; and a key may begin with "-"
    )

    # Rotate with a 1-hour grace period.
    page.get_by_label("Grace period for the current key").select_option("1h")
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("status")).to_contain_text("The new key is active")
    retiring = page.get_by_role("row", name=re.compile(old_kid))
    expect(retiring).to_contain_text("retiring")
    expect(retiring).to_contain_text("signs in until")
    new_kid = page.get_by_role("row", name=re.compile("active")).locator("code").first.inner_text()
    assert new_kid != old_kid
    screenshot(page, "dashboard-sso-keys")
    new_key = reveal_active_key(page)  # sudo mode: no password asked again
    assert new_key != old_key

    # Try it: a link made with the new key, by the dashboard.
    page.get_by_role("link", name="Try it").click()
    page.get_by_label("Customer id").fill("1235")
    page.get_by_role("button", name="Make link").click()
    if page.get_by_role("heading", name="Confirm your password").is_visible():  # sudo, as for Reveal
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm and make the link").click()
    expect(page.get_by_role("heading", name="would sign in now")).to_be_visible()
    new_link = page.get_by_label(re.compile(r"^Link \(expires")).input_value()
    screenshot(page, "dashboard-try-it")

    # A customer signs in with the old key's link, and another with the new key's.
    customers = browser.new_context()
    try:
        first = customers.new_page()
        first.goto(old_link)
        expect(first.get_by_role("heading", level=1)).to_contain_text("Wile E. Coyote")
        second = customers.new_page()
        second.context.clear_cookies()
        second.goto(new_link)
        expect(second.get_by_role("heading", level=1)).to_contain_text("Road Runner Logistics")
    finally:
        customers.close()

    # Revoke the old key early: its link stops working at once.
    page.get_by_role("link", name="Single Sign-On").click()
    page.get_by_role("row", name=re.compile(old_kid)).get_by_role("button", name="Revoke now").click()
    expect(page.get_by_role("status")).to_contain_text("The key is revoked")
    expect(page.get_by_role("row", name=re.compile(old_kid))).to_contain_text("revoked")

    rejected = browser.new_context()
    try:
        late = rejected.new_page()
        response = late.goto(old_link)
        assert response is not None
        assert response.status == 401
        expect(late.get_by_role("heading", level=1)).to_have_text("This sign-in link is not valid")
    finally:
        rejected.close()

    # The sign-in log shows both sign-ins and the rejection, with its reason.
    page.get_by_role("link", name="Sign-in log").click()
    rows = page.locator("table.log tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("failure")
    expect(rows.nth(0)).to_contain_text("key_revoked")
    expect(rows.nth(0)).to_contain_text("The token is signed with an SSO key that has been revoked.")
    expect(rows.nth(1)).to_contain_text(new_kid)
    expect(rows.nth(1)).to_contain_text("success")
    expect(rows.nth(2)).to_contain_text(old_kid)
    expect(rows.nth(2)).to_contain_text("success")
    screenshot(page, "dashboard-sign-in-log")
    page.get_by_label("Reason").select_option("key_revoked")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"reason=key_revoked"))
    expect(rows).to_have_count(1)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    csv_text = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert csv_text.count("\n") == 2
    assert '"key_revoked"' in csv_text

    # The audit trail: who revealed, rotated and revoked, from where.
    page.get_by_role("link", name="Audit trail").click()
    trail = page.locator("table.audit tbody tr")
    expect(trail.nth(0)).to_contain_text("SSO key revoked")
    expect(page.locator("table.audit")).to_contain_text("SSO key rotated")
    expect(page.locator("table.audit")).to_contain_text("SSO key revealed")
    expect(page.locator("table.audit")).to_contain_text(EMAIL)
    expect(page.locator("table.audit")).to_contain_text("127.0.0.1")
    screenshot(page, "dashboard-audit")

    page.get_by_role("link", name="Policy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in policy")
    screenshot(page, "dashboard-policy")

    # Keys and passwords never reach the server's log.
    log = live_server.log()
    assert old_key not in log
    assert new_key not in log
    assert PASSWORD not in log
