"""The dashboard's layout in chromium (issue 19.8): checkbox beside its label, key tables with aligned
cells, and key cards on a phone that keep every label."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, FloatRect, Page, expect

from tests.browser.conftest import LiveServer, screenshot

EMAIL = "lin@acme.example"
PASSWORD = "another long and secret passphrase"


@pytest.fixture
def admin_page(live_server: LiveServer, browser: Browser) -> Iterator[Page]:
    if EMAIL not in live_server.cli("admin", "list", "--tenant", "acme"):
        live_server.cli(
            "admin", "create", "--tenant", "acme", "--email", EMAIL, "--password-stdin", stdin=PASSWORD + "\n"
        )
        live_server.cli("api-key", "create", "--tenant", "acme", "--name", "layout check")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(live_server.url("dashboard", "/sign-in"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Setting up")).to_be_visible()  # the home page and its checklist
    yield page
    context.close()


def box(page: Page, selector: str) -> FloatRect:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return found


def test_the_single_use_checkbox_sits_beside_its_label(live_server: LiveServer, admin_page: Page) -> None:
    admin_page.goto(live_server.url("dashboard", "/settings/developers/sso/policy"))
    checkbox, label = box(admin_page, "#require_jti"), box(admin_page, "label[for=require_jti]")
    assert checkbox["width"] < 40
    gap = label["x"] - (checkbox["x"] + checkbox["width"])
    assert 0 <= gap < 16, gap
    assert abs((checkbox["y"] + checkbox["height"] / 2) - (label["y"] + label["height"] / 2)) < 12
    screenshot(admin_page, "dashboard-policy")


@pytest.mark.parametrize("path", ["/settings/developers/sso", "/settings/developers/api-keys"])
def test_every_cell_of_a_key_row_shares_its_borders(live_server: LiveServer, admin_page: Page, path: str) -> None:
    admin_page.goto(live_server.url("dashboard", path))
    rows = admin_page.locator("table tbody tr")
    assert rows.count() >= 1
    for r in range(rows.count()):
        cells = [rows.nth(r).locator("td").nth(c).bounding_box() for c in range(rows.nth(r).locator("td").count())]
        tops = {round(cell["y"]) for cell in cells if cell}
        bottoms = {round(cell["y"] + cell["height"]) for cell in cells if cell}
        assert len(tops) == 1, (path, r, tops)
        assert len(bottoms) == 1, (path, r, bottoms)


@pytest.mark.parametrize(
    ("path", "labels"),
    [
        ("/settings/developers/sso", ["Key id", "State", "Created", "Last used"]),
        ("/settings/developers/api-keys", ["Name", "Key", "Created", "Last used", "State"]),
    ],
)
def test_key_cards_on_a_phone_keep_their_labels(
    live_server: LiveServer, admin_page: Page, path: str, labels: list[str]
) -> None:
    admin_page.set_viewport_size({"width": 390, "height": 844})
    admin_page.goto(live_server.url("dashboard", path))
    first = admin_page.locator("table tbody tr").first
    shown = first.locator("td").evaluate_all(
        "cells => cells.filter(c => c.offsetParent !== null)"
        ".map(c => getComputedStyle(c, '::before').content.replace(/^\"|\"$/g, ''))"
    )
    for label in labels:
        assert label in shown, (path, label, shown)
