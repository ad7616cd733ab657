"""Sessions and the sign-in flow around them: replay, login CSRF, fixation, cookies, expiry, sign-out."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.cli import main
from billportal.core.config import Settings
from billportal.storage import open_store
from billportal.storage import schema as t
from billportal.web import sessions
from tests.conftest import ACME_KEY, GLOBEX_KEY, World, run
from tests.functional.dashboard_support import (
    ADMIN_EMAIL,
    PASSWORD,
    SSO,
    admin_of_acme,
    attempt_sign_in,
    make_admin,
)
from tests.functional.test_dashboard_sso import claims, login, reveal_active, signs_in
from tests.functional.test_signin import COOKIE
from tests.security.conftest import (
    HS256,
    assert_refused,
    good_claims,
    last_reason,
    session_count,
    shared_app_clients,
    signed,
)

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def csrf_token(page_text: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page_text)
    assert match is not None
    return match.group(1)


# -- replay -----------------------------------------------------------------------------------------


def other_spellings_of(token: str) -> list[str]:
    """The same token with its signature written another way: spare bits, padding, + and /, %-escapes."""
    head, body, sig = token.split(".")
    spare = sig[:-1] + ALPHABET[ALPHABET.index(sig[-1]) ^ 0b11]  # 43 chars: 2 spare bits
    assert base64.urlsafe_b64decode(spare + "=") == base64.urlsafe_b64decode(sig + "=")
    return [
        f"{head}.{body}.{spare}",
        f"{head}.{body}.{sig}=",
        f"{head}.{body}.{sig.replace('-', '+').replace('_', '/')}",
    ]


def test_a_single_use_link_signs_in_once_whatever_its_spelling(world: World, failure_page: str) -> None:
    token = signed(HS256, good_claims(world, jti="single-use-1"))
    assert world.client().get(f"/login/{token}").status_code == 303
    # The very same string, and the same string %-escaped in the URL (the server sees it unescaped).
    for path in (token, quote(token, safe="").replace(".", "%2E").replace("-", "%2D")):
        response = world.client().get(f"/login/{path}")
        assert response.status_code == 401
        assert last_reason(world) == "jti_replayed"
    sessions_before = session_count(world.store)
    for spelling in other_spellings_of(token):
        if spelling == token:
            continue
        response = world.client().get(f"/login/{quote(spelling, safe='')}")
        assert response.status_code == 401
        assert response.text == failure_page
        # Refused before the single-use mark is even looked at: the bytes are spelt wrong.
        assert last_reason(world) == "token_malformed"
    assert session_count(world.store) == sessions_before == 1


def test_replay_by_post_of_a_link_used_by_get(world: World) -> None:
    token = signed(HS256, good_claims(world, jti="single-use-2"))
    assert world.client().post("/login", data={"token": token}).status_code == 303
    assert world.client().get(f"/login/{token}").status_code == 401
    assert last_reason(world) == "jti_replayed"


def test_refused_attempts_do_not_use_up_a_single_use_link(world: World) -> None:
    token = signed(HS256, good_claims(world, jti="single-use-3"))
    cross_site = {"sec-fetch-site": "cross-site", "sec-fetch-dest": "image"}
    assert world.client().get(f"/login/{token}", headers=cross_site).status_code == 401
    assert world.client().get(f"/login/{token}").status_code == 303


# -- login CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "destination", ["image", "script", "style", "font", "empty", "object", "embed", "audio", "video", "worker"]
)
def test_a_cross_site_subresource_does_not_sign_in(world: World, failure_page: str, destination: str) -> None:
    # <img src="https://acme.portal/login/..."> on another site, with a valid link.
    token = signed(HS256, good_claims(world))
    headers = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": destination}
    for response in (
        world.client().get(f"/login/{token}", headers=headers),
        world.client().post("/login", data={"token": token}, headers=headers),
    ):
        assert_refused(world, response, failure_page, "cross_site_request")


@pytest.mark.parametrize(
    ("site", "destination"),
    [
        ("cross-site", "document"),  # a link or redirect from the company's app
        ("same-site", "document"),
        ("none", "document"),  # typed or bookmarked
        (None, None),  # a browser that sends no Sec-Fetch headers
    ],
)
# A framed sign-in needs a site the company allows: tests/functional/test_embedding.py.
def test_a_navigation_signs_in(world: World, site: str | None, destination: str | None) -> None:
    headers = {"sec-fetch-site": site, "sec-fetch-dest": destination, "sec-fetch-mode": "navigate"} if site else {}
    headers = {name: value for name, value in headers.items() if value}
    response = world.client().get(f"/login/{signed(HS256, good_claims(world))}", headers=headers)
    assert response.status_code == 303
    assert COOKIE in response.cookies


# -- fixation -----------------------------------------------------------------------------------------


def test_a_planted_cookie_is_never_adopted(world: World) -> None:
    planted = "attacker-chosen-session-id"
    client = world.client(cookies={COOKIE: planted})
    response = client.get(f"/login/{signed(HS256, good_claims(world))}")
    assert response.status_code == 303
    issued = response.cookies[COOKIE]
    assert issued != planted
    assert world.client(cookies={COOKIE: planted}).get("/").status_code == 401
    assert world.client(cookies={COOKIE: issued}).get("/").status_code == 200


def test_the_attackers_own_session_planted_in_a_victims_browser_ends_at_sign_in(world: World) -> None:
    attacker = world.client()
    attacker.get(f"/login/{signed(HS256, good_claims(world, sub=1235))}")
    attackers_cookie = attacker.cookies[COOKIE]
    victim = world.client()
    victim.cookies.set(COOKIE, attackers_cookie, domain="acme.localhost")
    assert victim.get("/").status_code == 200  # the planted session works until the victim signs in
    response = victim.get(f"/login/{signed(HS256, good_claims(world))}")
    assert response.cookies[COOKIE] != attackers_cookie
    assert victim.cookies[COOKIE] == response.cookies[COOKIE]
    assert "Wile E. Coyote" in victim.get("/").text
    assert world.client(cookies={COOKIE: attackers_cookie}).get("/").status_code == 401


def test_session_ids_are_random_and_only_their_hash_is_stored(world: World) -> None:
    ids = set()
    for _ in range(5):
        response = world.client().get(f"/login/{signed(HS256, good_claims(world))}")
        ids.add(response.cookies[COOKIE])
    assert len(ids) == 5
    for session_id in ids:
        assert len(base64.urlsafe_b64decode(session_id + "=" * (-len(session_id) % 4))) >= 32
        stored = run(world.store.session(hashlib.sha256(session_id.encode()).digest()))
        assert stored is not None
        assert run(world.store.session(session_id.encode().ljust(32, b"\0")[:32])) is None


# -- cookie flags --------------------------------------------------------------------------------------


def test_session_cookie_flags(world: World) -> None:
    response = world.client().get(f"/login/{signed(HS256, good_claims(world))}")
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 1
    attributes = [part.strip() for part in cookies[0].split(";")]
    name, _, value = attributes[0].partition("=")
    assert name == "__Host-bp_session"  # the browser enforces Secure, Path=/ and no Domain for __Host-
    assert value
    flags = {part.split("=")[0].lower(): part.partition("=")[2] for part in attributes[1:]}
    assert flags["path"] == "/"
    assert flags["max-age"] == str(world.settings.session_absolute_seconds)
    assert flags["samesite"].lower() == "lax"
    assert "httponly" in flags
    assert "secure" in flags
    assert "domain" not in flags
    assert "expires" not in flags or flags["max-age"]


def test_without_tls_the_cookie_drops_the_host_prefix_it_could_not_keep(world: World) -> None:
    from dataclasses import replace

    from starlette.testclient import TestClient

    from billportal.app import build_app

    settings: Settings = replace(world.settings, cookie_secure=False)
    client = TestClient(
        build_app(settings, world.store, world.clock), base_url="http://acme.localhost", follow_redirects=False
    )
    cookie = client.get(f"/login/{signed(HS256, good_claims(world))}").headers["set-cookie"]
    assert cookie.startswith("bp_session=")
    assert "Secure" not in cookie
    assert "HttpOnly" in cookie


# -- expiry ----------------------------------------------------------------------------------------------


def test_idle_session_ends_and_is_deleted(world: World) -> None:
    client = world.client()
    client.get(f"/login/{signed(HS256, good_claims(world))}")
    cookie = client.cookies[COOKIE]
    id_hash = sessions.hash_session_id(cookie)
    world.clock.advance(world.settings.session_idle_seconds)
    response = client.get("/")
    assert response.status_code == 401
    assert "Wile E. Coyote" not in response.text
    assert run(world.store.session(id_hash)) is None
    # And it stays over when the clock is turned back: the row is gone.
    world.clock.advance(-world.settings.session_idle_seconds)
    assert world.client(cookies={COOKIE: cookie}).get("/").status_code == 401


def test_a_busy_session_still_ends_at_its_absolute_limit(world: World) -> None:
    client = world.client()
    client.get(f"/login/{signed(HS256, good_claims(world))}")
    step = world.settings.session_idle_seconds // 2
    elapsed = 0
    while elapsed + step < world.settings.session_absolute_seconds:
        world.clock.advance(step)
        elapsed += step
        assert client.get("/").status_code == 200
    world.clock.advance(world.settings.session_absolute_seconds - elapsed)
    assert client.get("/").status_code == 401
    assert session_count(world.store) == 0


# -- sign-out ---------------------------------------------------------------------------------------------


def test_sign_out_ends_the_session_on_the_server_and_clears_the_cookie(world: World) -> None:
    client = world.client()
    client.get(f"/login/{signed(HS256, good_claims(world))}")
    cookie = client.cookies[COOKIE]
    token = csrf_token(client.get("/").text)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    cleared = response.headers["set-cookie"]
    assert cleared.startswith(f"{COOKIE}=;")
    assert "Max-Age=0" in cleared
    assert run(world.store.session(sessions.hash_session_id(cookie))) is None
    # The old cookie, replayed with its form token, opens nothing and signs nothing out.
    thief = world.client(cookies={COOKIE: cookie})
    assert thief.get("/").status_code == 401
    assert thief.post("/logout", data={"csrf_token": token}).status_code == 303
    assert session_count(world.store) == 0


def test_sign_out_by_get_is_refused_and_ends_nothing(world: World) -> None:
    client = world.client()
    client.get(f"/login/{signed(HS256, good_claims(world))}")
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_signing_out_one_session_leaves_the_customers_others(world: World) -> None:
    laptop, phone = world.client(), world.client()
    laptop.get(f"/login/{signed(HS256, good_claims(world))}")
    phone.get(f"/login/{signed(HS256, good_claims(world))}")
    laptop.post("/logout", data={"csrf_token": csrf_token(laptop.get("/").text)})
    assert laptop.get("/").status_code == 401
    assert phone.get("/").status_code == 200


# -- the emergency switches (issue 12.6) ------------------------------------------------------------------


def signed_in_browsers(world: World) -> dict[str, Any]:
    """Two acme customers and one globex customer, each signed in and seen once (Redis then holds a copy)."""
    browsers = {}
    for name, company, sub, key in (
        ("wile", "acme", 1234, ACME_KEY),
        ("road runner", "acme", 1235, ACME_KEY),
        ("hank", "globex", 1234, GLOBEX_KEY),
    ):
        client = world.client(company)
        assert client.get(f"/login/{signed(HS256, good_claims(world, sub=sub), key)}").status_code == 303
        assert client.get("/").status_code == 200
        browsers[name] = client
    return browsers


def test_a_link_cutoff_can_also_end_every_session_made_before_it(world: World) -> None:
    browsers = signed_in_browsers(world)
    thief = world.client(cookies={COOKIE: browsers["wile"].cookies[COOKIE]})  # a copied cookie
    assert thief.get("/").status_code == 200
    dashboard = admin_of_acme(world)
    assert dashboard.post(f"{SSO}/revoke/links", {"sessions": "end"}).status_code == 303
    for client in (browsers["wile"], browsers["road runner"], thief):
        response = client.get("/")
        assert response.status_code == 401
        assert "Wile E. Coyote" not in response.text
    assert browsers["hank"].get("/").status_code == 200  # another company's customers stay
    assert session_count(world.store) == 1
    world.clock.advance(1)
    fresh = world.client()
    assert fresh.get(f"/login/{signed(HS256, good_claims(world, iat=world.clock.now))}").status_code == 303
    assert fresh.get("/").status_code == 200
    audit = run(world.store.admins.audit_events(world.acme.id))
    assert audit[0].action == "sso.links_cut_off"
    assert "every customer signed out (2 sessions ended)" in audit[0].detail


def test_a_link_cutoff_alone_leaves_sessions_as_they_are(world: World) -> None:
    browsers = signed_in_browsers(world)
    dashboard = admin_of_acme(world)
    assert dashboard.post(f"{SSO}/revoke/links").status_code == 303
    assert browsers["wile"].get("/").status_code == 200


def test_signing_every_customer_out_ends_each_session_and_every_copy_of_it(world: World) -> None:
    browsers = signed_in_browsers(world)
    cookie = browsers["road runner"].cookies[COOKIE]
    other_process = shared_app_clients(world)("203.0.113.50", cookies={COOKIE: cookie})
    assert other_process.get("/").status_code == 200
    dashboard = admin_of_acme(world)
    page = dashboard.get(f"{SSO}/revoke")
    assert "Sign every customer out" in page.text
    assert 'name="sessions" value="end" checked' in page.text
    assert dashboard.post(f"{SSO}/revoke/everyone").status_code == 303
    # The rows are gone, and a copy Redis still holds (30 s) or another process read opens nothing.
    assert run(world.store.session(sessions.hash_session_id(cookie))) is None or world.settings.redis_url
    for client in (browsers["wile"], browsers["road runner"], other_process):
        assert client.get("/").status_code == 401
    assert browsers["hank"].get("/").status_code == 200
    audit = run(world.store.admins.audit_events(world.acme.id))
    assert (audit[0].action, audit[0].detail) == (
        "sso.customers_signed_out",
        "every customer signed out (2 sessions ended)",
    )
    # Links still valid sign in again: the switch ends sessions, not links.
    world.clock.advance(1)
    again = world.client()
    assert again.get(f"/login/{signed(HS256, good_claims(world))}").status_code == 303
    assert again.get("/").status_code == 200


def test_a_rotation_without_grace_retires_every_older_key(world: World) -> None:
    dashboard = admin_of_acme(world)
    first = world.company("acme").sso_keys[0].kid
    assert dashboard.post(f"{SSO}/keys/rotate", {"grace": "7d", "password": PASSWORD}).status_code == 303
    second, second_key = reveal_active(dashboard, world)
    assert signs_in(world, world.token(claims(world)))  # the first key, retiring for 7 days
    assert (
        dashboard.post(f"{SSO}/keys/rotate", {"grace": "none", "password": PASSWORD, "confirm": "yes"}).status_code
        == 303
    )
    _, third_key = reveal_active(dashboard, world)
    assert login(world, world.token(claims(world))) == (401, "key_revoked")
    assert login(world, world.token(claims(world), key=second_key)) == (401, "key_revoked")
    assert signs_in(world, world.token(claims(world), key=third_key))
    states = {key.kid: key.state for key in world.company("acme").sso_keys}
    assert states[first] == states[second] == "revoked"


# -- sessions that are over are pruned; a session in use never idles out (issue 12.12) ---------------------


def sessions_over_and_live(world: World) -> tuple[TestClient, TestClient]:
    """An idle-expired and a live customer session, and the same for admins; times on the real clock."""
    idle = world.settings.session_idle_seconds
    world.clock.now = int(time.time()) - idle - 120
    old = world.client()
    assert old.get(f"/login/{signed(HS256, good_claims(world))}").status_code == 303
    make_admin(world)
    attempt_sign_in(world.client("dashboard"), ADMIN_EMAIL, PASSWORD)
    world.clock.now = int(time.time())
    live = world.client()
    assert live.get(f"/login/{signed(HS256, good_claims(world))}").status_code == 303
    assert attempt_sign_in(world.client("dashboard"), ADMIN_EMAIL, PASSWORD).status_code == 303
    return old, live


def admin_session_count(world: World) -> int:
    query = select(func.count()).select_from(t.admin_sessions)
    count: int = run(world.store.read(lambda conn: conn.execute(query).scalar_one()))
    return count


def test_the_cli_prunes_the_sessions_that_are_over(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old, live = sessions_over_and_live(world)
    assert (session_count(world.store), admin_session_count(world)) == (2, 2)
    settings = world.settings
    monkeypatch.setenv("BILLPORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BILLPORTAL_MASTER_KEY", base64.urlsafe_b64encode(settings.master_key).decode())
    monkeypatch.setenv("BILLPORTAL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BILLPORTAL_REDIS_URL", settings.redis_url)
    capsys.readouterr()
    assert main(["sessions", "prune"]) == 0
    assert json.loads(capsys.readouterr().out) == {"pruned": 2}
    assert (session_count(world.store), admin_session_count(world)) == (1, 1)
    assert live.get("/").status_code == 200  # the live ones are untouched
    assert old.get("/").status_code == 401


def test_each_server_prunes_the_sessions_that_are_over_in_the_background(world: World) -> None:
    sessions_over_and_live(world)
    store = open_store(world.settings, migrate=False)  # the server's own: it closes it at shutdown
    with TestClient(build_app(world.settings, store, world.clock)):  # startup: pruned at once, then every 10 min
        deadline = time.monotonic() + 10
        while (session_count(world.store), admin_session_count(world)) != (1, 1):
            assert time.monotonic() < deadline, "the sessions that are over were not pruned"
            time.sleep(0.05)


def test_with_a_60_second_idle_timeout_a_session_in_use_does_not_idle_out(world: World) -> None:
    # last_seen_at was written once a minute: with a 60 s idle timeout a busy session died at 60 s.
    settings = replace(world.settings, session_idle_seconds=60)
    app = build_app(settings, world.store, world.clock)
    customer = TestClient(app, base_url="https://acme.localhost", follow_redirects=False)
    assert customer.get(f"/login/{signed(HS256, good_claims(world))}").status_code == 303
    make_admin(world)
    admin = TestClient(app, base_url="https://dashboard.localhost", follow_redirects=False)
    assert attempt_sign_in(admin, ADMIN_EMAIL, PASSWORD).status_code == 303
    for _ in range(12):  # four minutes, a request every 20 seconds
        world.clock.advance(20)
        assert customer.get("/").status_code == 200
        assert admin.get(SSO).status_code == 200
    world.clock.advance(60)  # and idle for the whole timeout: over
    assert customer.get("/").status_code == 401
    assert admin.get(SSO).status_code == 303
