"""Contacts' roles on every portal route, found by walking the router and its declared guards; the account picker.

Each protected route declares the permission a contact needs (``@customer(page, needs=...)``). Under each
role, every route is asked: one the role allows answers as usual, one it does not answers the friendly 403
page and changes nothing. The customer's own sign-in may do everything. An address with several accounts
picks one after signing in and switches from the header; a switch to any account that is not the address's
in this company is refused.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from billportal.app import portal_router
from billportal.services import contacts
from billportal.services.audit import CLI
from billportal.storage import email_sign_ins
from billportal.storage.records import Session
from billportal.web import sessions
from billportal.web.context import Context
from billportal.web.guards import Guard, declared
from tests import factories
from tests.conftest import World, run
from tests.functional.test_contacts import sign_in_by_email, sso_browser
from tests.functional.test_email_sign_in import Mail, cli, mail, smtp
from tests.functional.test_signin import COOKIE
from tests.security.conftest import Documents, database, documents, own_url

__all__ = ["cli", "documents", "mail", "smtp"]  # fixtures, imported so that they are found here

REFUSED = "This page is not available to you"
ROLES = [None, "view", "pay", "manage"]  # None: the customer's own sign-in


def guarded_routes(world: World) -> list[tuple[str, str, Guard]]:
    """(method, path, guard) of every portal route that declares a customer session."""
    router = portal_router(Context(world.settings, world.store, world.clock))
    found: list[tuple[str, str, Guard]] = []
    for route in router.routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        guard = declared(route.endpoint)
        if guard is None or guard.session != "customer":
            continue
        found.extend((method, route.path, guard) for method in sorted(route.methods - {"HEAD"}))
    return found


def browser_as(world: World, contact_id: int | None, email: str = "") -> tuple[TestClient, str]:
    """A browser with a session of acme's customer 1234 (as that contact, or as the customer); its CSRF token."""
    session_id, csrf = sessions.new_session_id(), sessions.new_csrf_token()
    now = world.clock.now
    session = Session(
        sessions.hash_session_id(session_id),
        world.acme.id,
        1234,
        csrf,
        now,
        now,
        now + 3600,
        "Firefox on Linux",
        contact_id=contact_id,
        email=email,
    )
    run(world.store.write(lambda conn: email_sign_ins.insert_session(conn, session)))
    browser = world.client()
    browser.cookies.set(COOKIE, session_id)
    return browser, csrf


def test_every_guarded_route_declares_what_a_contact_needs(world: World) -> None:
    routes = guarded_routes(world)
    assert len(routes) > 30
    for method, path, guard in routes:
        assert guard.needs in contacts.PERMISSIONS, f"{method} {path} declares no contact permission"
    needs = {(method, path): guard.needs for method, path, guard in routes}
    # The rules the issue asks for: paying needs pay; billing details and payment methods need manage.
    assert needs["POST", "/pay"] == "pay"
    assert needs["POST", "/billing-info"] == "manage"
    assert needs["POST", "/payment-methods"] == "manage"
    assert needs["GET", "/invoices"] == "view"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role or "customer")
def test_each_role_on_every_portal_route(world: World, documents: Documents, role: str | None) -> None:
    contact_id = int(documents.mine["contact"])
    acme = world.company("acme")
    if role is not None:
        run(contacts.update(world.store, acme, 1234, contact_id, {"role": role}, actor=CLI, now=world.clock.now))
    browser, csrf = browser_as(world, contact_id if role is not None else None)
    routes = guarded_routes(world)
    allowed = {(m, p): contacts.allows(role, guard.needs) for m, p, guard in routes}
    assert any(allowed.values())
    if role is None or role == "manage":
        assert all(allowed.values())
    else:
        assert not all(allowed.values())

    for method, path, _guard in routes:
        if method != "GET":
            continue
        answer = browser.get(own_url(path, documents))
        if allowed[method, path]:
            assert answer.status_code == 200, (role, path, answer.status_code)
            assert REFUSED not in answer.text, (role, path)
        else:
            assert answer.status_code == 403, (role, path, answer.status_code)
            assert REFUSED in answer.text, (role, path)
            assert 'href="/"' in answer.text  # the way back

    # Refused forms change nothing at all.
    before = database(world, "acme")
    for method, path, _guard in routes:
        if method == "POST" and not allowed[method, path]:
            answer = browser.post(own_url(path, documents), data=_form(csrf, documents))
            assert answer.status_code == 403, (role, path, answer.status_code)
            assert REFUSED in answer.text, (role, path)
    assert database(world, "acme") == before
    # Allowed forms are let through (what they then do is each page's own tests').
    for method, path, _guard in sorted(routes, key=lambda r: r[1] == "/security/sessions/end-others"):
        if method == "POST" and allowed[method, path]:
            answer = browser.post(own_url(path, documents), data=_form(csrf, documents))
            assert answer.status_code < 500, (role, path)
            assert REFUSED not in answer.text, (role, path)


def _form(csrf: str, documents: Documents) -> dict[str, Any]:
    return {"csrf_token": csrf, "contact": str(documents.mine["contact"]), "role": "view", "approved_by": "Mallory"}


def test_the_header_and_menu_show_only_what_the_role_may_use(world: World, documents: Documents) -> None:
    contact_id = int(documents.mine["contact"])
    browser, _csrf = browser_as(world, contact_id)
    home = browser.get("/")
    assert "MINE Contact, Wile E. Coyote" in home.text  # who is signed in, for which business
    assert 'href="/contacts"' not in home.text  # a view-only contact does not manage contacts
    assert "account-switcher" not in home.text  # one account: no switcher


# -- the account picker and switching -----------------------------------------------------------------------


@pytest.fixture
def shared_address(world: World, mail: Mail) -> dict[str, int]:
    """wile@example.com is customer 1234's own address, a paying contact at 1235, and a contact at globex."""
    now = world.clock.now
    at_1235 = run(factories.contact(world.store, world.acme, 1235, now=now, email="wile@example.com", role="pay"))
    other = run(factories.contact(world.store, world.acme, 1235, now=now, email="someone@example.com", role="manage"))
    globex = run(factories.contact(world.store, world.globex, 77, now=now, email="wile@example.com", role="manage"))
    del mail
    return {"at_1235": at_1235.id, "other": other.id, "globex": globex.id}


def _whoami(browser: TestClient) -> str:
    found = re.search(r'<span class="whoami">([^<]*)</span>', browser.get("/").text)
    assert found is not None
    return found[1]


def test_an_address_with_several_accounts_picks_one_and_switches(
    world: World, mail: Mail, shared_address: dict[str, int]
) -> None:
    browser, answer = sign_in_by_email(mail, "wile@example.com")
    assert answer.headers["location"] == "/accounts"
    picker = browser.get("/accounts")
    assert picker.status_code == 200
    assert "Wile E. Coyote" in picker.text
    assert "Road Runner" in picker.text
    assert "Homer Simpson" not in picker.text  # another company's account is not this portal's
    keys = re.findall(r'name="account" value="([^"]+)"', picker.text)
    assert keys == ["1234:0", f"1235:{shared_address['at_1235']}"]
    home = browser.get("/")
    assert "account-switcher" in home.text  # the header's switcher, for this person
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert csrf is not None
    token = csrf[1]

    switched = browser.post("/accounts/switch", data={"csrf_token": token, "account": keys[1]})
    assert switched.status_code == 303
    assert _whoami(browser) == "Pat Contact, Road Runner"  # the contact, at customer 1235
    assert browser.get("/invoices").status_code == 200
    assert browser.get("/billing-info").status_code == 403  # a paying contact does not manage billing
    back = browser.post("/accounts/switch", data={"csrf_token": token, "account": "1234:0"})
    assert back.status_code == 303
    assert browser.get("/billing-info").status_code == 200  # the customer's own address may do everything

    sessions_before = database(world, "acme")["sessions"]
    for stolen in (
        f"77:{shared_address['globex']}",  # a contact at another company
        "1234567890:0",  # an acme customer the address is not
        f"1235:{shared_address['other']}",  # another person's contact at 1235
        "1235:0",  # customer 1235 itself
        "1234:1",
        "",
        "x",
        "1235:" + "9" * 40,
    ):
        refused = browser.post("/accounts/switch", data={"csrf_token": token, "account": stolen})
        assert refused.status_code == 403, stolen
    no_csrf = browser.post("/accounts/switch", data={"account": keys[1]})
    assert no_csrf.status_code == 403
    assert database(world, "acme")["sessions"] == sessions_before
    assert _whoami(browser) == "Wile E. Coyote"


def test_a_single_account_has_no_switcher_and_cannot_switch(world: World, shared_address: dict[str, int]) -> None:
    browser = sso_browser(world)  # signed in by SSO: no address, no other accounts
    home = browser.get("/")
    assert "account-switcher" not in home.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert token is not None
    refused = browser.post(
        "/accounts/switch", data={"csrf_token": token[1], "account": f"1235:{shared_address['at_1235']}"}
    )
    assert refused.status_code == 403
    assert "You are signed in to one account" in browser.get("/accounts").text
    assert _whoami(browser) == "Wile E. Coyote"
