"""CSRF on the REST API in a real browser (issue 12.1): a cross-site page cannot make an invoice.

The review's attack, replayed in Debian's chromium: the browser holds the API key
as cached HTTP credentials (Playwright's ``http_credentials``, which answers an
authentication challenge the way a browser that prompted once does), and a page
on another site auto-submits a ``text/plain`` form whose body is an invoice in
JSON. Before the fix chromium answered the API's ``Basic`` challenge with the
key, the API read the text as JSON, and the invoice was made. Now no invoice is.
"""

from __future__ import annotations

import html
import json

import httpx
from playwright.sync_api import Browser, Route

from tests.browser.conftest import LiveServer

ATTACKER = "http://evil.example/"
INVOICE = {
    "customer_id": 1234,
    "issued_on": "2026-11-01",
    "lines": [{"description": "Sent by a page on another site", "quantity": "1", "unit_price": 100}],
}


def attack_page(api: str) -> str:
    """A form whose text/plain body, ``name=value``, is the invoice's JSON (its notes field swallows the ``=``)."""
    prefix = json.dumps({**INVOICE, "notes": ""})[:-2]  # ... "notes": "
    return (
        "<!doctype html><title>Win a prize</title>"
        f'<form id="f" method="post" enctype="text/plain" action="{html.escape(api)}">'
        f'<input type="hidden" name="{html.escape(prefix)}" value="&quot;}}"></form>'
        "<script>document.getElementById('f').submit()</script>"
    )


def invoices(live_server: LiveServer, key: str) -> list[dict[str, object]]:
    answer = httpx.get(
        f"http://127.0.0.1:{live_server.port}/api/v1/invoices?limit=100",
        headers={"host": f"dashboard.localhost:{live_server.port}", "authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200
    data: list[dict[str, object]] = answer.json()["data"]
    return data


def test_a_cross_site_text_plain_form_makes_no_invoice(live_server: LiveServer, browser: Browser) -> None:
    key = json.loads(live_server.cli("api-key", "create", "--tenant", "acme", "--name", "csrf test"))["key"]
    before = invoices(live_server, key)
    api = live_server.url("dashboard", "/api/v1/invoices")
    context = browser.new_context(http_credentials={"username": key, "password": ""})
    try:
        page = context.new_page()

        def serve_attacker(route: Route) -> None:
            route.fulfill(status=200, content_type="text/html", body=attack_page(api))

        page.route(f"{ATTACKER}**", serve_attacker)
        with page.expect_response(lambda response: response.url == api) as answered:
            page.goto(ATTACKER)
        response = answered.value
        assert response.status in (401, 403, 415), response.status
        assert "basic" not in (response.headers.get("www-authenticate") or "").lower()
    finally:
        context.close()
    after = invoices(live_server, key)
    assert after == before
    assert not any("another site" in json.dumps(invoice) for invoice in after)
