"""A link from ``billportal sso-url`` signs a customer in, in a real browser."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer


def test_cli_link_signs_in_and_the_access_log_hides_the_token(live_server: LiveServer, page: Page) -> None:
    url = live_server.cli(
        "sso-url", "--tenant", "acme", "--customer", "1234", "--base-url", f"http://localhost:{live_server.port}"
    )
    token = url.rsplit("/login/", 1)[1]
    page.goto(url)
    expect(page).to_have_url(live_server.url("acme", "/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Wile E. Coyote")
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == "__Host-bp_session"]
    assert session
    assert session[0]["httpOnly"]
    assert session[0]["secure"]
    log = live_server.log()
    assert "/login/[redacted]" in log
    assert token not in log
    assert session[0]["value"] not in log


def test_an_expired_link_shows_the_generic_page(live_server: LiveServer, page: Page) -> None:
    response = page.goto(live_server.url("acme", "/login/eyJhbGciOiJIUzI1NiJ9.e30.AAAA"))
    assert response is not None
    assert response.status == 401
    expect(page.get_by_role("heading", level=1)).to_have_text("This sign-in link is not valid")
