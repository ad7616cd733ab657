"""The portal in a frame of the company's own app (issue 21): which sign-in gets which cookie, over HTTP.

A sign-in link loaded into a frame of a site the company lists gets the partitioned cookie
(``SameSite=None; Secure; Partitioned``); any other sign-in keeps the top-level ``SameSite=Lax``
one; a framed sign-in from any other site is refused. The browser's side is in
tests/browser/test_embedding_browser.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import World, run
from tests.functional.dashboard_support import admin_of_acme
from tests.functional.test_dashboard_sso import save_policy
from tests.functional.test_portal_pages import MESA_ROAD, _billing_form
from tests.functional.test_signin import COOKIE
from tests.security.conftest import HS256, good_claims, last_reason, session_count, signed

FRAMED = "__Host-bp_framed"
APP = "https://app.acme.example"
INTRANET = "https://intranet.acme.example:8443"


def frame(
    referer: str | None = f"{APP}/billing", site: str | None = "cross-site", dest: str = "iframe"
) -> dict[str, str]:
    """The headers of a navigation in a frame, as chromium sends them."""
    headers = {"sec-fetch-dest": dest, "sec-fetch-mode": "navigate", "referer": referer, "sec-fetch-site": site}
    return {name: value for name, value in headers.items() if value is not None}


IN_FRAME = {"sec-fetch-dest": "iframe", "sec-fetch-mode": "navigate", "sec-fetch-site": "same-origin"}
TOP_LEVEL = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate", "sec-fetch-site": "same-origin"}


@pytest.fixture
def allowed(world: World) -> World:
    """acme lets its app and its intranet frame the portal."""
    assert save_policy(admin_of_acme(world), frame_ancestors=f"{APP}\n{INTRANET}").status_code == 303
    return world


def link(world: World, **claims: Any) -> str:
    return f"/login/{signed(HS256, good_claims(world, **claims))}"


def cookie_attributes(response: Any) -> tuple[str, dict[str, str]]:
    """The one Set-Cookie of an answer: its name and its attributes (lower-case names)."""
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 1, cookies
    parts = [part.strip() for part in cookies[0].split(";")]
    name = parts[0].partition("=")[0]
    return name, {part.partition("=")[0].lower(): part.partition("=")[2] for part in parts[1:]}


def assert_frame_refused(world: World, response: Any) -> None:
    """Refused as any sign-in is (401, no cookie, no session), for frame_not_allowed."""
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert session_count(world.store) == 0
    assert last_reason(world) == "frame_not_allowed"


def csp(response: Any) -> dict[str, str]:
    parsed = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        parsed[name] = value
    return parsed


# -- which sign-in gets which cookie ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        frame(),  # chromium's default referrer policy: the app's origin for a cross-site frame
        frame(referer=f"{APP}/"),
        frame(referer=APP),
        frame(referer=f"{INTRANET}/portal?tab=billing"),
        frame(referer="HTTPS://App.Acme.Example/billing"),  # an origin's case does not matter
        frame(dest="frame"),  # a <frame> in a <frameset>
        frame(site="same-site"),  # an app on a sibling host of the portal's
    ],
)
def test_a_framed_sign_in_from_an_allowed_site_gets_the_partitioned_cookie(
    allowed: World, headers: dict[str, str]
) -> None:
    world = allowed
    response = world.client().get(link(world), headers=headers)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    name, flags = cookie_attributes(response)
    assert name == FRAMED  # never the top-level cookie's name
    assert response.cookies[FRAMED]
    assert flags["samesite"] == "None"
    assert {"secure", "partitioned", "httponly"} <= flags.keys()
    assert flags["path"] == "/"
    assert "domain" not in flags
    assert flags["max-age"] == str(world.settings.session_absolute_seconds)
    assert session_count(world.store) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a browser that sends no Sec-Fetch headers
        {"sec-fetch-site": "cross-site", "sec-fetch-dest": "document", "referer": f"{APP}/billing"},
        {"sec-fetch-site": "same-site", "sec-fetch-dest": "document"},
        {"sec-fetch-site": "none", "sec-fetch-dest": "document"},
        {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "referer": f"{APP}/"},  # no Sec-Fetch-Dest
    ],
)
def test_a_top_level_sign_in_keeps_the_lax_cookie_even_from_an_allowed_site(
    allowed: World, headers: dict[str, str]
) -> None:
    response = allowed.client().get(link(allowed), headers=headers)
    assert response.status_code == 303
    name, flags = cookie_attributes(response)
    assert name == COOKIE
    assert flags["samesite"] == "Lax"
    assert "partitioned" not in flags


def test_a_listed_default_port_matches_the_origin_browsers_send(world: World) -> None:
    listed = "https://billing.acme.example:443\nhttp://localhost:80"
    assert save_policy(admin_of_acme(world), frame_ancestors=listed).status_code == 303
    for referer in ("https://billing.acme.example/app", "http://localhost/app"):
        response = world.client().get(link(world), headers=frame(referer))
        assert response.status_code == 303, referer
        assert cookie_attributes(response)[0] == FRAMED
    refused = world.client().get(link(world), headers=frame("https://billing.acme.example:8443/"))
    assert refused.status_code == 401


def test_a_framed_sign_in_by_post_follows_the_same_rule(allowed: World) -> None:
    world = allowed
    token = signed(HS256, good_claims(world))
    response = world.client().post("/login", data={"token": token}, headers=frame())
    assert response.status_code == 303
    assert cookie_attributes(response)[0] == FRAMED
    refused = world.client().post("/login", data={"token": token}, headers=frame("https://evil.example/"))
    assert refused.status_code == 401
    assert last_reason(world) == "frame_not_allowed"


# -- framed sign-ins that are refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        frame("https://evil.example/embed"),  # another site
        frame(None),  # no Referer: the site cannot be told (referrerpolicy="no-referrer")
        frame(""),
        frame("null"),
        frame("not a url"),
        frame("http://app.acme.example/billing"),  # the allowed host, another scheme
        frame("https://app.acme.example:444/"),  # the allowed host, another port
        frame("https://intranet.acme.example/"),  # listed with its port 8443 only
        frame("https://x.app.acme.example/"),  # a subdomain of an allowed site
        frame("https://app.acme.example.evil.example/"),  # a suffix trick
        frame("https://evil.example/?https://app.acme.example"),
        frame(site="same-origin"),  # the portal framing itself
        frame(site="none"),  # no page framed it
        frame(site=None),  # Sec-Fetch-Dest without Sec-Fetch-Site: not a browser we know
    ],
)
def test_a_framed_sign_in_from_anywhere_else_is_refused(allowed: World, headers: dict[str, str]) -> None:
    response = allowed.client().get(link(allowed), headers=headers)
    assert_frame_refused(allowed, response)


def test_without_allowed_sites_every_framed_sign_in_is_refused_and_blocked(world: World) -> None:
    # The default: no site may frame the portal, so no framed sign-in either (it was accepted before).
    response = world.client().get(link(world), headers=frame())
    assert_frame_refused(world, response)
    assert csp(response)["frame-ancestors"] == "'none'"  # and the browser shows nothing in the frame


def test_one_companys_allowed_sites_do_not_open_anothers_frames(allowed: World) -> None:
    from tests.conftest import GLOBEX_KEY

    token = signed(HS256, good_claims(allowed), GLOBEX_KEY)
    response = allowed.client("globex").get(f"/login/{token}", headers=frame())
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert last_reason(allowed, "globex") == "frame_not_allowed"


def test_a_refused_framed_sign_in_does_not_use_up_a_single_use_link(allowed: World) -> None:
    path = link(allowed, jti="framed-once")
    assert allowed.client().get(path, headers=frame("https://evil.example/")).status_code == 401
    response = allowed.client().get(path, headers=frame())
    assert response.status_code == 303
    assert allowed.client().get(path, headers=frame()).status_code == 401
    assert last_reason(allowed) == "jti_replayed"


def test_the_failure_page_shows_in_an_allowed_frame_and_nowhere_else(allowed: World) -> None:
    response = allowed.client().get("/login/not-a-token", headers=frame())
    assert response.status_code == 401
    assert csp(response)["frame-ancestors"] == f"{APP} {INTRANET}"
    assert "script-src" not in csp(response)


# -- the two sessions never mix ------------------------------------------------------------------------------


def framed_client(world: World) -> TestClient:
    client = world.client()
    assert client.get(link(world), headers=frame()).status_code == 303
    assert FRAMED in client.cookies
    assert COOKIE not in client.cookies
    return client


def test_the_framed_session_opens_pages_in_a_frame_only(allowed: World) -> None:
    client = framed_client(allowed)
    page = client.get("/", headers=IN_FRAME)
    assert page.status_code == 200
    assert "Welcome, Wile E. Coyote" in page.text
    # The same browser's top-level visit, even if the cookie were sent, is not signed in by it.
    for headers in (TOP_LEVEL, {}):
        top = client.get("/", headers=headers)
        assert top.status_code == 401
        assert "Wile E. Coyote" not in top.text
    assert client.get("/", headers=IN_FRAME).status_code == 200  # and the framed session is still there


def test_a_top_level_session_opens_nothing_in_a_frame(allowed: World) -> None:
    client = allowed.client()
    assert client.get(link(allowed)).status_code == 303
    assert client.get("/", headers=TOP_LEVEL).status_code == 200
    framed = client.get("/", headers=IN_FRAME)
    assert framed.status_code == 401
    assert "Wile E. Coyote" not in framed.text
    assert cookie_attributes(framed)[0] == FRAMED  # the frame forgets its own cookie, never the top-level one
    assert client.get("/", headers=TOP_LEVEL).status_code == 200


def test_both_sessions_side_by_side_sign_in_and_out_apart(allowed: World) -> None:
    client = framed_client(allowed)
    assert client.get(link(allowed, sub=1235)).status_code == 303  # a top-level sign-in: another customer
    assert "Wile E. Coyote" in client.get("/", headers=IN_FRAME).text
    assert "Road Runner" in client.get("/", headers=TOP_LEVEL).text
    token = csrf(client.get("/", headers=IN_FRAME).text)
    out = client.post("/logout", data={"csrf_token": token}, headers=IN_FRAME)
    assert out.status_code == 303
    name, flags = cookie_attributes(out)
    assert name == FRAMED
    assert flags["max-age"] == "0"
    assert "partitioned" in flags  # or the browser would not clear the partitioned cookie
    assert session_count(allowed.store) == 1
    assert client.get("/", headers=IN_FRAME).status_code == 401
    assert "Road Runner" in client.get("/", headers=TOP_LEVEL).text


def test_a_framed_session_ends_when_the_company_stops_allowing_frames(world: World) -> None:
    dashboard = admin_of_acme(world)
    assert save_policy(dashboard, frame_ancestors=APP).status_code == 303
    client = framed_client(world)
    assert client.get("/", headers=IN_FRAME).status_code == 200
    assert save_policy(dashboard, frame_ancestors="").status_code == 303
    response = client.get("/", headers=IN_FRAME)
    assert response.status_code == 401
    assert csp(response)["frame-ancestors"] == "'none'"
    assert "<script" not in response.text
    assert cookie_attributes(response)[0] == FRAMED


# -- framed pages: the same CSP, and a script only there --------------------------------------------------------


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_a_framed_page_loads_our_script_for_the_allowed_origins_only(allowed: World) -> None:
    client = framed_client(allowed)
    page = client.get("/invoices", headers=IN_FRAME)
    assert page.status_code == 200
    policy = csp(page)
    assert policy["frame-ancestors"] == f"{APP} {INTRANET}"
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts == [f'<script src="/static/framed.js" data-origins="{APP} {INTRANET}" defer>']
    assert "<script>" not in page.text  # nothing inline


def test_a_page_outside_a_frame_stays_script_free(allowed: World) -> None:
    client = allowed.client()
    client.get(link(allowed))
    for path in ("/", "/invoices", "/billing-info", "/estimates"):
        page = client.get(path, headers=TOP_LEVEL)
        assert page.status_code == 200
        assert "<script" not in page.text
        assert "script-src" not in csp(page)
        assert csp(page)["frame-ancestors"] == f"{APP} {INTRANET}"  # the allowed sites still frame it
    signed_out = allowed.client().get("/signed-out")
    assert "<script" not in signed_out.text


def test_an_acting_page_works_in_an_allowed_frame_and_keeps_its_csrf_check(allowed: World) -> None:
    client = framed_client(allowed)
    page = client.get("/billing-info", headers=IN_FRAME).text
    form = _billing_form(page, **{**MESA_ROAD, "city": "Santa Fe"})
    forged = client.post("/billing-info", data={**form, "csrf_token": "forged"}, headers=IN_FRAME)
    assert forged.status_code == 403
    assert csp(forged)["frame-ancestors"] == f"{APP} {INTRANET}"  # the same CSP as the page it answers
    saved = client.post("/billing-info", data=form, headers=IN_FRAME)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/billing-info?saved=1"
    customer = run(allowed.billing.customer(allowed.acme.id, 1234))
    assert customer is not None
    assert customer.city == "Santa Fe"
    # The top-level session's token is not the framed one's, and vice versa.
    top = allowed.client()
    top.get(link(allowed))
    top_token = csrf(top.get("/billing-info").text)
    assert client.post("/billing-info", data={**form, "csrf_token": top_token}, headers=IN_FRAME).status_code == 403


def test_a_frame_without_a_session_is_told_so_and_not_sent_away(world: World) -> None:
    allowed = world
    policy = {"frame_ancestors": APP, "sign_in_url": "https://app.acme.example/billing/sso"}
    assert save_policy(admin_of_acme(world), **policy).status_code == 303
    response = allowed.client().get("/invoices", headers=IN_FRAME)
    # Not the redirect to the company's sign-in URL a top-level visit gets: in the frame it would come
    # back without a Referer and be refused. The host page loads a new link instead.
    assert response.status_code == 401
    assert '<script src="/static/framed.js" data-origins="https://app.acme.example" data-signed-out="no_session"' in (
        response.text
    )
    assert 'href="https://app.acme.example/billing/sso?redirect_to=invoices" target="_blank"' in response.text
    assert csp(response)["script-src"] == "'self'"
    top = allowed.client().get("/invoices", headers=TOP_LEVEL)
    assert top.status_code == 303
    assert top.headers["location"] == "https://app.acme.example/billing/sso?redirect_to=invoices"


def test_signed_out_in_a_frame_tells_the_host_page(allowed: World) -> None:
    response = allowed.client().get("/signed-out", headers=IN_FRAME)
    assert response.status_code == 200
    assert f'<script src="/static/framed.js" data-origins="{APP} {INTRANET}" defer>' in response.text


def test_the_embed_scripts_are_served(allowed: World) -> None:
    client = allowed.client()
    for name in ("embed.js", "framed.js"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    framed = client.get("/static/framed.js").text
    assert '"*"' not in framed
    assert "'*'" not in framed
