"""Email sign-in in chromium: the form, the email (from the server's mail outbox), the confirmation page, the button.

Screenshots: docs/screenshots/portal-email-sign-in-*.png and portal-security.png.
"""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, screenshot

SESSION = "__Host-bp_session"
EMAIL = "wile@coyote.example"


def _sign_in_email(server: LiveServer, seen: set[str]) -> str:
    """The text of the next sign-in email the server's deliverer writes to its outbox folder."""
    outbox = Path(server.env["BILLPORTAL_DATA_DIR"]) / "mail-outbox"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*-sign_in.eml")) if outbox.exists() else []:
            if path.name in seen:
                continue
            seen.add(path.name)
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            body = message.get_body(("plain",))
            assert body is not None
            text: str = body.get_content()
            return text
        time.sleep(0.2)
    raise AssertionError("no sign-in email was sent")


def test_email_sign_in_through_the_confirmation_page(live_server: LiveServer, page: Page) -> None:
    live_server.cli("email-sign-in", "on", "--tenant", "acme")
    time.sleep(1.2)  # the server keeps the company's settings for a second
    seen = {p.name for p in (Path(live_server.env["BILLPORTAL_DATA_DIR"]) / "mail-outbox").glob("*.eml")}

    page.goto(live_server.url("acme", "/invoices"))  # signed out: sent to the email form
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    screenshot(page, "portal-email-sign-in-form")
    page.get_by_label("Email address").fill(EMAIL.upper())
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.get_by_role("status")).to_contain_text("If Acme")
    screenshot(page, "portal-email-sign-in-sent")

    text = _sign_in_email(live_server, seen)
    link = re.search(r"http://acme\.localhost:\d+/login/email/[A-Za-z0-9_-]+", text)
    assert link is not None, text

    # A second browser opens the link as a mail scanner would: it sees the page and changes nothing.
    scanner = page.context.browser.new_context() if page.context.browser else None
    assert scanner is not None
    scanned = scanner.new_page()
    for _ in range(3):
        scanned.goto(link[0])
        expect(scanned.get_by_role("button", name="Sign in")).to_be_visible()
    assert not [c for c in scanner.cookies() if c["name"] == SESSION]
    scanner.close()

    page.goto(link[0])
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in to the billing portal of Acme")
    assert not [c for c in page.context.cookies() if c["name"] == SESSION]
    screenshot(page, "portal-email-sign-in-confirm")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url("acme", "/invoices"))  # the page first asked for
    session = [c for c in page.context.cookies() if c["name"] == SESSION]
    assert session
    assert session[0]["httpOnly"]

    page.goto(live_server.url("acme", "/security"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    expect(page.get_by_text("(this browser)")).to_be_visible()
    screenshot(page, "portal-security")

    assert link[0].rsplit("/", 1)[1] not in live_server.log()  # the access log hides the link's token

    # The link is used: opening it again offers a new one instead.
    page.goto(link[0])
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    live_server.cli("email-sign-in", "off", "--tenant", "acme")
