"""Settings > Developers > API keys in chromium: sudo, scopes, a key shown once, a reload that makes nothing.

Issue 12.4 (creating a key asks for the password again; scopes are chosen and
listed) and issue 19.7 (reloading the page that shows a new key made a second key).
"""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer

EMAIL = "keys@acme.example"
PASSWORD = "a long and secret passphrase"


def test_a_key_is_made_after_the_password_shown_once_and_a_reload_makes_no_other(
    live_server: LiveServer, page: Page
) -> None:
    live_server.cli("admin", "create", "--tenant", "acme", "--email", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    page.goto(live_server.url("dashboard", "/sign-in"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(live_server.url("dashboard", "/settings/developers/api-keys"))

    page.get_by_label("Name", exact=True).fill("rotation job")
    page.get_by_label("sso_keys", exact=False).check()
    page.get_by_label("documents:write", exact=False).uncheck()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm and create the key").click()

    expect(page.get_by_role("heading", name="Your new API key “rotation job”")).to_be_visible()
    key = page.get_by_label("Key", exact=True).input_value()
    assert key.startswith("bp_live_")
    assert "created=" in page.url
    assert key not in page.url

    page.reload()
    expect(page.get_by_role("heading", name="This key was shown once")).to_be_visible()
    assert key not in page.content()
    listed = json.loads(live_server.cli("api-key", "list", "--tenant", "acme", "--json"))
    assert [(k["name"], k["scopes"]) for k in listed] == [
        ("rotation job", ["documents:read", "sign_in_links", "sso_keys", "sign_in_events:read"])
    ]

    # On a phone each key is a card whose cells keep their labels.
    page.set_viewport_size({"width": 390, "height": 844})
    row = page.locator("table.keys tbody tr").first
    labels = row.locator("td[data-label]").evaluate_all(
        "cells => cells.map(c => getComputedStyle(c, '::before').content)"
    )
    for label in ("Name", "Scopes", "Created", "Last used", "State"):
        assert f'"{label}"' in labels
    assert key not in live_server.log()
