"""The portal inside the company's own app, in chromium (issue 21).

The company's app is a page on another site than the portal: a tiny HTTP server on
``http://127.0.0.1:{port}`` (allowed in the dashboard) and another on ``http://127.0.0.2:{port}``
(not allowed). The portal is ``http://acme.localhost:{port}``: chromium treats ``*.localhost`` and
``127.0.0.0/8`` as secure contexts, so the Secure, Partitioned cookie works over plain HTTP here.
Screenshots go to docs/screenshots/embedding-*.png (shown in docs/embedding.md).
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Frame, Page, expect

from tests.browser.conftest import LiveServer, free_port, screenshot, sign_in_to_dashboard

EMAIL = "ada@acme.example"
PASSWORD = "a long and secret passphrase"
FRAMED = "__Host-bp_framed"
LAX = "__Host-bp_session"

# The host page: the plain iframe of docs/embedding.md, embed.js, and a log of every message it receives.
HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: sans-serif; margin: 1rem 2rem; background: #f3f4f6; }}
header {{ background: #1f2937; color: white; padding: .75rem 1rem; margin: -1rem -2rem 1rem; }}
iframe {{ width: 100%; border: 1px solid #d1d5db; background: white; }}</style></head>
<body><header>{title}</header>
<h1>Billing</h1>
<iframe data-billportal id="portal" title="Billing portal" src="{src}"></iframe>
<script>
window.received = [];
window.events = [];
window.addEventListener("message", function (event) {{
  window.received.push({{origin: event.origin, data: event.data}});
}});
["billportal:navigated", "billportal:signed_out", "billportal:height"].forEach(function (name) {{
  document.getElementById("portal").addEventListener(name, function (event) {{ window.events.push(event.detail); }});
}});
</script>
<script src="{portal}/static/embed.js"></script>
</body></html>
"""


@dataclass
class Host:
    """A company app's web server: ``pages`` maps a path to the HTML it answers."""

    origin: str
    pages: dict[str, str] = field(default_factory=dict)

    def url(self, path: str = "/") -> str:
        return self.origin + path


def serve(address: str) -> Iterator[Host]:
    port = free_port()
    host = Host(f"http://{address}:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = host.pages.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield host
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def app_host() -> Iterator[Host]:
    """The company's app: its origin is listed in the dashboard."""
    yield from serve("127.0.0.1")


@pytest.fixture(scope="module")
def other_host() -> Iterator[Host]:
    """Any other site (127.0.0.2 is another site than 127.0.0.1): not listed."""
    yield from serve("127.0.0.2")


@pytest.fixture(scope="module")
def embedding_allowed(live_server: LiveServer, app_host: Host, browser: Browser) -> LiveServer:
    """An admin lists the app's origin under Single Sign-On > Embedding, in the dashboard."""
    live_server.cli("admin", "create", "--tenant", "acme", "--email", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in_to_dashboard(page, live_server, EMAIL, PASSWORD)
    page.goto(live_server.url("dashboard", "/settings/developers/sso/policy"))
    page.get_by_label("Sites that may show the portal in a frame").fill(app_host.origin)
    page.get_by_label("Sites that may show the portal in a frame").scroll_into_view_if_needed()
    screenshot(page, "embedding-dashboard")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator(".notice")).to_be_visible()
    context.close()
    return live_server


def portal_origin_of(server: LiveServer) -> str:
    return f"http://acme.localhost:{server.port}"


def sign_in_link(server: LiveServer, redirect_to: str | None = None) -> str:
    args = ["sso-url", "--tenant", "acme", "--customer", "1234", "--base-url", f"http://localhost:{server.port}"]
    url = server.cli(*args)
    return f"{url}&redirect_to={redirect_to}" if redirect_to and "?" in url else url


def host_page(host: Host, server: LiveServer, src: str, path: str = "/", title: str = "Acme app") -> str:
    host.pages[path] = HOST_PAGE.format(title=title, src=html.escape(src), portal=portal_origin_of(server))
    return host.url(path)


def portal_frame(page: Page) -> Frame:
    frame = page.frame(url=re.compile(r"^http://acme\.localhost:"))
    assert frame is not None, [f.url for f in page.frames]
    return frame


def received(page: Page) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = page.evaluate("window.received")
    return messages


NEXT_PAINTS = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


def sized(page: Page) -> None:
    """Wait until the iframe has the height the portal's page last posted, and both have painted it."""
    path = urlsplit(portal_frame(page).url).path
    page.wait_for_function(
        """(path) => {
          const events = window.events;
          const shown = events.map((e) => e.type === "billportal:navigated" && e.path === path).lastIndexOf(true);
          const heights = events.slice(shown + 1).filter((e) => e.type === "billportal:height");
          const frame = document.getElementById("portal");
          return shown >= 0 && heights.length > 0 && frame.style.height === heights[heights.length - 1].height + "px";
        }""",
        arg=path,
    )
    portal_frame(page).evaluate(NEXT_PAINTS)
    page.evaluate(NEXT_PAINTS)


def cookie_names(page: Page) -> set[str]:
    return {cookie["name"] for cookie in page.context.cookies()}


def test_an_allowed_app_frames_the_portal_signed_in_by_its_link(
    embedding_allowed: LiveServer, app_host: Host, page: Page
) -> None:
    server = embedding_allowed
    portal_origin = portal_origin_of(server)
    # Tall enough for the sized frame: chromium paints a cross-site frame only inside the viewport.
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.goto(host_page(app_host, server, sign_in_link(server)))
    frame = page.frame_locator("#portal")

    # My Account, inside the frame.
    expect(frame.get_by_role("heading", level=1)).to_have_text("Welcome, Wile E. Coyote")
    cookies = [c for c in page.context.cookies() if c["name"] == FRAMED]
    assert len(cookies) == 1
    assert cookies[0]["sameSite"] == "None"
    assert cookies[0]["secure"]
    assert cookies[0]["httpOnly"]
    assert (cookies[0].get("partitionKey") or "").startswith("http://127.0.0.1")  # kept for the app's site only
    assert LAX not in cookie_names(page)  # the top-level cookie is never set in a frame

    # embed.js sized the frame to its page.
    expect(page.locator("#portal")).to_have_attribute("style", re.compile(r"height: \d+px"))
    height = page.evaluate("document.getElementById('portal').getBoundingClientRect().height")
    assert height > 400
    sized(page)
    screenshot(page, "embedding-my-account")

    # An invoice, inside the frame.
    frame.get_by_role("navigation", name="Portal").get_by_role("link", name="Invoices", exact=True).click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("Invoices")
    first = frame.get_by_role("table").get_by_role("link").first
    number = first.inner_text()
    first.click()
    expect(frame.get_by_role("heading", level=1)).to_contain_text(f"Invoice {number}")
    assert re.search(r"/invoices/\d+$", portal_frame(page).url)
    sized(page)
    screenshot(page, "embedding-invoice")

    # The messages came from the portal's origin, to this page.
    messages = received(page)
    assert messages
    assert {m["origin"] for m in messages} == {portal_origin}
    navigated = [m["data"] for m in messages if m["data"]["type"] == "billportal:navigated"]
    assert [n["path"] for n in navigated][:1] == ["/"]
    assert re.fullmatch(r"/invoices/\d+", navigated[-1]["path"])
    assert all(n["signedIn"] for n in navigated)
    heights = [m["data"]["height"] for m in messages if m["data"]["type"] == "billportal:height"]
    assert heights
    assert all(isinstance(h, int) and h > 0 for h in heights)
    # Each one a DOM event on the iframe, but a page's repeat of what it said (asked by embed.js's hello).
    told = {(m["data"]["type"], m["data"]["page"]) for m in messages if m["data"]["type"] != "billportal:height"}
    assert page.evaluate("window.events.length") == len(told) + len(heights)

    # A top-level visit to the portal, in the same browser, is not signed in by the framed session.
    top = page.context.new_page()
    top.goto(server.url("acme", "/invoices"))
    expect(top.get_by_role("heading", level=1)).to_have_text("Please sign in")
    expect(top.get_by_text("Wile E. Coyote")).to_have_count(0)
    top.close()
    expect(frame.get_by_role("heading", level=1)).to_contain_text(f"Invoice {number}")  # the frame still is

    # A page that acts, inside the frame: its form posts with the framed session's CSRF token.
    frame.get_by_role("navigation", name="Portal").get_by_role("link", name="Billing details", exact=True).click()
    frame.get_by_label("City").fill("Santa Fe")
    # From the keyboard: in this headless run a mouse click low in the cross-site frame did not reach
    # the button (no request was sent; the sign-out button, near the top, takes the mouse).
    frame.get_by_role("button", name="Save billing details").press("Enter")
    expect(frame.get_by_text("Your billing details were saved.")).to_be_visible()
    expect(frame.get_by_label("City")).to_have_value("Santa Fe")

    # Signing out, inside the frame (a form with its CSRF token, as at top level).
    frame.get_by_role("button", name="Sign out").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("You are signed out")
    assert FRAMED not in cookie_names(page)
    signed_out = [m["data"] for m in received(page) if m["data"]["type"] == "billportal:signed_out"]
    assert signed_out == [{"type": "billportal:signed_out", "reason": "signed_out"}]
    sized(page)
    screenshot(page, "embedding-signed-out")
    portal_frame(page).goto(server.url("acme", "/"))
    expect(frame.get_by_role("heading", level=1)).to_have_text("Please sign in")


def test_a_site_that_is_not_allowed_gets_no_session_and_a_blocked_frame(
    embedding_allowed: LiveServer, other_host: Host, page: Page
) -> None:
    server = embedding_allowed
    page.goto(host_page(other_host, server, sign_in_link(server), title="Some other site"))
    page.wait_for_load_state("load")  # the host page's load waits for its frame's answer
    # The sign-in is refused (frame_not_allowed); its answer may not be framed here, so chromium shows
    # its own error page in the frame instead of the portal's.
    child = page.frames[1]
    assert not child.url.startswith(server.url("acme", "")), child.url
    assert "Wile E. Coyote" not in child.content()
    assert not [c for c in page.context.cookies() if c["name"] in (FRAMED, LAX)]
    assert received(page) == []  # the portal's script never ran here: no message reached this site
    screenshot(page, "embedding-refused")


def test_a_blocked_third_party_cookie_falls_back_to_a_new_tab(
    embedding_allowed: LiveServer, app_host: Host, page: Page
) -> None:
    # A browser that keeps no cookie in the frame lands, after the link, on a page without a session.
    # The same happens when the frame opens a portal page without a link: embed.js says so either way.
    server = embedding_allowed
    page.goto(host_page(app_host, server, server.url("acme", "/invoices"), path="/no-cookie"))
    fallback = page.locator("[data-billportal-fallback]")
    expect(fallback).to_contain_text("does not keep the billing portal's sign-in inside this page")
    link = fallback.get_by_role("link", name="Open the billing portal in a new tab")
    expect(link).to_have_attribute("target", "_blank")
    expect(page.locator("#portal")).to_be_hidden()
    events = page.evaluate("window.events")
    said = [{k: v for k, v in e.items() if k != "page"} for e in events]
    assert {"type": "billportal:signed_out", "reason": "no_session", "cookiesBlocked": True} in said
    screenshot(page, "embedding-new-tab-fallback")


def test_embed_js_that_starts_after_the_frame_has_loaded_still_hears_it(
    embedding_allowed: LiveServer, app_host: Host, page: Page
) -> None:
    # A deferred or slow embed.js may run after the frame's page has posted its messages: it asks
    # again (billportal:hello), so the fallback still shows, and each message is an event only once.
    server = embedding_allowed
    late = HOST_PAGE.replace(
        '<script src="{portal}/static/embed.js"></script>',
        """<script>
document.getElementById("portal").addEventListener("load", function () {{
  setTimeout(function () {{
    var script = document.createElement("script");
    script.src = "{portal}/static/embed.js";
    document.body.appendChild(script);
  }}, 300);
}});
</script>""",
    )
    app_host.pages["/late"] = late.format(
        title="Acme app", src=html.escape(server.url("acme", "/invoices")), portal=portal_origin_of(server)
    )
    page.goto(app_host.url("/late"))
    expect(page.locator("[data-billportal-fallback]")).to_contain_text("Open the billing portal in a new tab")
    types = [e["type"] for e in page.evaluate("window.events") if e["type"] != "billportal:height"]
    assert types == ["billportal:navigated", "billportal:signed_out"]
    first = [m["data"] for m in received(page) if m["data"]["type"] == "billportal:signed_out"]
    assert len(first) == 2  # said on load, unheard; said again to the hello


def test_under_a_site_that_is_not_allowed_even_an_allowed_page_gets_no_portal_and_no_message(
    embedding_allowed: LiveServer, app_host: Host, other_host: Host, page: Page
) -> None:
    # Another site frames the company's own page, which frames the portal: frame-ancestors checks
    # every ancestor, so chromium shows no portal page there and its script never posts anything.
    server = embedding_allowed
    inner = host_page(app_host, server, sign_in_link(server), path="/framed-by-another-site")
    other_host.pages["/nested"] = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Another site</title></head><body>'
        "<script>window.received = [];"
        "window.addEventListener('message', function (e) { window.received.push({origin: e.origin}); });</script>"
        f'<iframe id="app" title="The company\'s app" src="{html.escape(inner)}" width="1000" height="600"></iframe>'
        "</body></html>"
    )
    page.goto(other_host.url("/nested"))
    page.wait_for_load_state("load")
    app = page.frame(url=inner)
    assert app is not None
    expect(app.locator("h1")).to_have_text("Billing")  # the company's page itself is shown
    portal = app.child_frames[0]
    assert not portal.url.startswith(portal_origin_of(server)), portal.url
    assert "Wile E. Coyote" not in portal.content()
    assert app.evaluate("window.received") == []
    assert received(page) == []
