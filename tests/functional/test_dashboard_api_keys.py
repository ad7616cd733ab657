"""Settings > Developers > API keys over HTTP: a key is shown once, works, is revoked, stays in its company."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from billportal.services import api_keys
from billportal.storage.records import ApiKeyInfo, AuditEvent
from tests.browser.conftest import LiveServer, live_server
from tests.conftest import World, run
from tests.functional.dashboard_support import ADMIN_EMAIL, PASSWORD, Dashboard, admin_of_acme, make_admin, sign_in
from tests.functional.test_api import dashboard as api_client
from tests.functional.test_api_sdk import Loopback
from tests.functional.test_dashboard_cli import cli

__all__ = ["cli", "live_server"]  # fixtures, imported so that they are found here

API_KEYS = "/settings/developers/api-keys"
HANK = "hank@globex.example"
NOT_FOUND = "There is no such active API key"
_SHOWN_KEY = re.compile(r'id="api-key"[^>]*value="(bp_live_[^"]+)"')
_REVOKE_ACTION = re.compile(r'action="/settings/developers/api-keys/(\d+)/revoke"')


def shown_key(html: str) -> str:
    match = _SHOWN_KEY.search(html)
    assert match, "no new key on the page"
    return match.group(1)


def key_form(name: str, scopes: tuple[str, ...] = api_keys.DEFAULT_SCOPES, **fields: str) -> dict[str, str]:
    """The create form as an admin fills it in, with their password (making a key asks for it again)."""
    return {"name": name, "password": PASSWORD, **{f"scope_{scope}": "on" for scope in scopes}, **fields}


def create(dashboard: Dashboard, name: str) -> str:
    """Make a key in the dashboard; the key as its answer page shows it."""
    response = dashboard.post(API_KEYS, key_form(name))
    assert response.status_code == 303, response.text
    shown = dashboard.get(response.headers["location"])
    assert shown.status_code == 200
    assert "it will not be shown again" in shown.text
    return shown_key(shown.text)


def keys_of(world: World, company: str = "acme") -> list[ApiKeyInfo]:
    return run(api_keys.keys_of(world.store, world.company(company).id))


def info_of(world: World, key: str, company: str = "acme") -> ApiKeyInfo:
    return next(k for k in keys_of(world, company) if key.startswith(k.prefix))


def audit_trail(world: World, company: str = "acme") -> list[AuditEvent]:
    return run(world.store.admins.audit_events(world.company(company).id))


def api_status(world: World, key: str) -> int:
    status: int = api_client(world, key, bearer=True).get("/api/v1/customers").status_code
    return status


def test_a_key_is_shown_once_works_and_stops_when_revoked(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    dashboard = admin_of_acme(world)
    empty = dashboard.get(API_KEYS)
    assert empty.status_code == 200
    assert empty.headers["cache-control"] == "no-store"
    assert "No API keys yet" in empty.text
    assert f'href="{API_KEYS}" aria-current="page"' in empty.text  # in the settings navigation

    made = dashboard.post(API_KEYS, key_form("  billing sync  "))
    assert made.status_code == 303
    assert made.headers["cache-control"] == "no-store"
    answer = dashboard.get(made.headers["location"])
    assert answer.headers["cache-control"] == "no-store"
    key = shown_key(answer.text)
    assert answer.text.count(key) == 1
    info = info_of(world, key)
    assert (info.name, info.last_used_at, info.revoked_at) == ("billing sync", None, None)

    listed = dashboard.get(API_KEYS)
    assert key not in listed.text  # shown once: never again
    assert f"{info.prefix}…" in listed.text
    assert "billing sync" in listed.text
    assert "never" in listed.text

    assert api_status(world, key) == 200  # it authenticates against the API, as a Bearer token
    assert info_of(world, key).last_used_at == world.clock.now
    assert "never" not in dashboard.get(API_KEYS).text  # last used is shown

    asked = dashboard.post(f"{API_KEYS}/{info.id}/revoke")  # the row's button asks to confirm first
    assert asked.status_code == 200
    assert asked.headers["cache-control"] == "no-store"
    assert "Revoke the API key “billing sync”?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert info_of(world, key).revoked_at is None
    assert api_status(world, key) == 200

    world.clock.advance(90)
    revoked = dashboard.post(f"{API_KEYS}/{info.id}/revoke", {"confirm": "yes"})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == f"{API_KEYS}?notice=api_key_revoked"
    assert api_status(world, key) == 401
    assert info_of(world, key).revoked_at == world.clock.now
    after = dashboard.get(revoked.headers["location"])
    assert "The API key is revoked" in after.text
    assert "revoked" in after.text
    assert not _REVOKE_ACTION.search(after.text)  # no revoke button for a revoked key
    again = dashboard.post(f"{API_KEYS}/{info.id}/revoke", {"confirm": "yes"})
    assert again.status_code == 404
    assert NOT_FOUND in again.text

    trail = audit_trail(world)
    assert [(e.action, e.actor) for e in trail[:2]] == [
        ("api_key.revoked", ADMIN_EMAIL),
        ("api_key.created", ADMIN_EMAIL),
    ]
    assert trail[0].detail == f"{info.prefix}… (billing sync)"
    assert trail[1].detail == f"{info.prefix}… (billing sync), scopes: {', '.join(api_keys.DEFAULT_SCOPES)}"
    for event in trail[:2]:
        assert event.ip
    page = dashboard.get("/audit").text
    assert "API key created" in page
    assert "API key revoked" in page
    for event in trail:
        assert key not in event.detail
    assert key not in page
    assert key not in caplog.text


def test_each_active_key_has_its_own_revoke_button(world: World) -> None:
    dashboard = admin_of_acme(world)
    first, second = create(dashboard, "first"), create(dashboard, "second")
    page = dashboard.get(API_KEYS).text
    assert _REVOKE_ACTION.findall(page) == [str(info_of(world, second).id), str(info_of(world, first).id)]
    # By the prefix the list shows, as the CLI takes it, too.
    prefix = info_of(world, first).prefix
    assert dashboard.post(f"{API_KEYS}/{quote(prefix + '…')}/revoke", {"confirm": "yes"}).status_code == 303
    assert (api_status(world, first), api_status(world, second)) == (401, 200)
    assert _REVOKE_ACTION.findall(dashboard.get(API_KEYS).text) == [str(info_of(world, second).id)]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the key a name"),
        ("   ", "Give the key a name"),
        ("x" * 101, "Use at most 100 characters."),
        ("billing\nsync", "cannot contain line breaks"),
        ("bill\x00ing", "cannot contain line breaks"),
    ],
)
def test_a_name_is_required_and_checked_beside_the_field(world: World, name: str, message: str) -> None:
    dashboard = admin_of_acme(world)
    response = dashboard.post(API_KEYS, key_form(name))
    assert response.status_code == 400
    assert re.search(r'id="name"[^>]*aria-invalid="true"', response.text)
    error = re.search(r'<p class="field-error" id="name-error">([^<]*)</p>', response.text)
    assert error
    assert message in error.group(1)
    assert not _SHOWN_KEY.search(response.text)
    assert keys_of(world) == []
    assert [e.action for e in audit_trail(world)] == ["admin.signed_in"]
    assert create(dashboard, "x" * 100)  # the control: 100 characters are fine


def test_without_an_admin_session_the_pages_send_to_sign_in(world: World) -> None:
    key = create(admin_of_acme(world), "kept")
    key_id = info_of(world, key).id
    client = world.client("dashboard")
    for response in (
        client.get(API_KEYS),
        client.post(API_KEYS, data={"name": "sneaky"}),
        client.post(f"{API_KEYS}/{key_id}/revoke", data={"confirm": "yes"}),
    ):
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in"
    assert [k.name for k in keys_of(world)] == ["kept"]
    assert api_status(world, key) == 200


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_every_api_key_form_refuses_a_post_without_its_csrf_token(world: World, token: str | None) -> None:
    dashboard = admin_of_acme(world)
    key = create(dashboard, "kept")
    key_id = info_of(world, key).id
    for path, data in [
        (API_KEYS, {"name": "forged"}),
        (f"{API_KEYS}/{key_id}/revoke", {}),
        (f"{API_KEYS}/{key_id}/revoke", {"confirm": "yes"}),
    ]:
        fields = dict(data) if token is None else {**data, "csrf_token": token}
        response = dashboard.client.post(path, data=fields)
        assert response.status_code == 403, path
        assert "This form has expired" in response.text
        assert "bp_live_" not in response.text
    assert [k.name for k in keys_of(world)] == ["kept"]
    assert api_status(world, key) == 200
    assert [e.action for e in audit_trail(world)] == ["api_key.created", "admin.signed_in"]


def test_another_companys_keys_are_answered_as_missing_ones(world: World) -> None:
    acme = admin_of_acme(world)
    make_admin(world, email=HANK, company="globex")
    globex = sign_in(world, email=HANK)
    theirs = create(globex, "globex secret sync")
    their_info = info_of(world, theirs, "globex")
    mine = create(acme, "acme sync")
    assert (api_status(world, mine), api_status(world, theirs)) == (200, 200)

    page = acme.get(API_KEYS).text
    assert "globex secret sync" not in page
    assert their_info.prefix not in page
    assert "acme sync" not in globex.get(API_KEYS).text

    before = audit_trail(world, "globex")
    missing_prefix = "bp_live_zzzzzzzz"
    for confirm in ({}, {"confirm": "yes"}):
        missing = acme.post(f"{API_KEYS}/999999/revoke", confirm)
        assert missing.status_code == 404
        assert NOT_FOUND in missing.text
        for reference, absent in ((str(their_info.id), "999999"), (their_info.prefix, missing_prefix)):
            response = acme.post(f"{API_KEYS}/{quote(reference)}/revoke", confirm)
            nothing = acme.post(f"{API_KEYS}/{quote(absent)}/revoke", confirm)
            assert response.status_code == nothing.status_code == 404, reference
            assert response.text == nothing.text == missing.text, reference  # word for word: nothing tells them apart
            assert "globex" not in response.text.lower()
    assert api_status(world, theirs) == 200
    assert info_of(world, theirs, "globex").revoked_at is None
    assert audit_trail(world, "globex") == before
    assert [e.action for e in audit_trail(world)][:1] == ["api_key.created"]  # no revocation recorded for acme
    # The control: globex's own admin revokes it.
    assert globex.post(f"{API_KEYS}/{their_info.id}/revoke", {"confirm": "yes"}).status_code == 303
    assert api_status(world, theirs) == 401


@pytest.mark.parametrize(
    "reference",
    ["0", "-1", str(2**63), "9" * 40, "\u00b2", "\u0661\u0662", "\uff11", "bp_live_" + "x" * 500, "..", "%00", "{kid}"],
)
def test_odd_key_references_are_missing_keys_never_errors(world: World, reference: str) -> None:
    dashboard = admin_of_acme(world)
    key = create(dashboard, "kept")
    response = dashboard.post(f"{API_KEYS}/{quote(reference, safe='')}/revoke", {"confirm": "yes"})
    assert response.status_code == 404
    assert api_status(world, key) == 200


def test_keys_made_and_revoked_with_the_cli_are_in_the_same_list_and_trail(world: World, cli: Any) -> None:
    dashboard = admin_of_acme(world)
    status, out, _ = cli("api-key", "create", "--tenant", "acme", "--name", "from the cli")
    assert status == 0
    info = info_of(world, json.loads(out)["key"])
    assert "from the cli" in dashboard.get(API_KEYS).text
    made_here = create(dashboard, "from the dashboard")
    assert cli("api-key", "revoke", "--tenant", "acme", info_of(world, made_here).prefix)[0] == 0
    assert dashboard.post(f"{API_KEYS}/{info.id}/revoke", {"confirm": "yes"}).status_code == 303
    trail = [(e.action, e.actor) for e in audit_trail(world)]
    assert trail[:4] == [
        ("api_key.revoked", ADMIN_EMAIL),
        ("api_key.revoked", "cli"),
        ("api_key.created", ADMIN_EMAIL),
        ("api_key.created", "cli"),
    ]
    assert cli("api-key", "create", "--tenant", "acme", "--name", "x" * 101)[0] == 2  # the same name rules


# -- a real server: what it logs --------------------------------------------------------------------------


def cookie_of(response: httpx.Response, name: str) -> str:
    """``name=value`` of a Set-Cookie (sent back by hand: the cookies are Secure, the server is http)."""
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}="))
    return cookie.split(";", 1)[0]


def test_a_running_server_never_logs_the_key(live_server: LiveServer) -> None:
    email = "keys@acme.example"
    live_server.cli("admin", "create", "--tenant", "acme", "--email", email, "--password-stdin", stdin=PASSWORD)
    base = live_server.url("dashboard", "")
    with httpx.Client(transport=Loopback(), base_url=base, follow_redirects=False, timeout=10) as browser:
        form = browser.get("/sign-in")
        form_cookie = cookie_of(form, "__Host-bp_admin_form")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        signed_in = browser.post(
            "/sign-in",
            data={"csrf_token": token.group(1), "email": email, "password": PASSWORD},
            headers={"Cookie": form_cookie},
        )
        assert signed_in.status_code == 303
        admin = {"Cookie": cookie_of(signed_in, "__Host-bp_admin")}
        page = browser.get(API_KEYS, headers=admin)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        made = browser.post(API_KEYS, data={"csrf_token": csrf.group(1), **key_form("server log")}, headers=admin)
        assert made.status_code == 303
        carried = cookie_of(made, "__Host-bp_shown_once")
        answer = browser.get(made.headers["location"], headers={"Cookie": f"{admin['Cookie']}; {carried}"})
        key = shown_key(answer.text)
        assert browser.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        key_id = _REVOKE_ACTION.search(browser.get(API_KEYS, headers=admin).text)
        assert key_id
        revoke = f"{API_KEYS}/{key_id.group(1)}/revoke"
        done = browser.post(revoke, data={"csrf_token": csrf.group(1), "confirm": "yes"}, headers=admin)
        assert done.status_code == 303
        assert browser.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code == 401
        assert browser.get("/api/v1/customers", auth=(key, "")).status_code == 401
    log = live_server.log()
    assert f'"POST {API_KEYS} HTTP/1.1" 303' in log  # the log is written: it holds the requests made above
    assert f'"GET {API_KEYS}?created=' in log
    assert f'"POST {revoke} HTTP/1.1" 303' in log
    assert key not in log
    assert key[len("bp_live_") :] not in log


# -- post/redirect/get: a reload makes no second key (issue 19.7) -------------------------------------------


def test_reloading_the_page_that_shows_a_key_makes_no_second_key(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dashboard = admin_of_acme(world)
    made = dashboard.post(API_KEYS, key_form("billing sync"))
    assert made.status_code == 303
    location = made.headers["location"]
    info = keys_of(world)[0]
    assert location == f"{API_KEYS}?created={info.id}"
    carried = next(c for c in made.headers.get_list("set-cookie") if c.startswith("__Host-bp_shown_once="))
    for flag in ("Path=/", "Max-Age=300", "HttpOnly", "Secure"):
        assert flag in carried
    shown = dashboard.get(location)
    key = shown_key(shown.text)
    assert key.startswith(info.prefix)
    assert key not in location
    assert key not in carried  # sealed with the master key
    assert any(c.startswith("__Host-bp_shown_once=;") for c in shown.headers.get_list("set-cookie"))  # cleared

    reloaded = dashboard.get(location)  # the browser's reload, after the redirect: a GET
    assert reloaded.status_code == 200
    assert "This key was shown once" in reloaded.text
    assert key not in reloaded.text
    assert not _SHOWN_KEY.search(reloaded.text)
    assert len(keys_of(world)) == 1
    assert [e.action for e in audit_trail(world)].count("api_key.created") == 1
    assert key not in caplog.text


def test_a_carried_key_opens_only_for_its_session_and_key_and_for_five_minutes(world: World) -> None:
    first = admin_of_acme(world)
    made = first.post(API_KEYS, key_form("one"))
    carried = made.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    location = made.headers["location"]
    other_key = create(first, "two")  # the same session makes another key: its own cookie
    assert other_key

    # The same admin signed in elsewhere (another session), with the cookie copied over.
    elsewhere = sign_in(world)
    elsewhere.client.cookies.set("__Host-bp_shown_once", carried, domain="dashboard.localhost")
    assert "This key was shown once" in elsewhere.get(location).text

    # The cookie shown for another key id of the same session.
    two_id = keys_of(world)[0].id
    first.client.cookies.set("__Host-bp_shown_once", carried, domain="dashboard.localhost")
    assert "This key was shown once" in first.get(f"{API_KEYS}?created={two_id}").text

    # Too late: the five minutes are over.
    first.client.cookies.set("__Host-bp_shown_once", carried, domain="dashboard.localhost")
    world.clock.advance(301)
    late = first.get(location)
    assert "This key was shown once" in late.text
    assert not _SHOWN_KEY.search(late.text)
    # Odd ids are the plain page.
    for odd in ("x", "-1", "99999999999999999999", "bp_live_"):
        assert first.get(f"{API_KEYS}?created={quote(odd)}").status_code == 200
