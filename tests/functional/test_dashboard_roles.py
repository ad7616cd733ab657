"""Admins and roles: every dashboard route under every role, the menu, invitations, and the last-owner rules.

The role matrix walks the dashboard's router and each route's declared area
(``web.guards.declared``), so a route added later is walked by its declaration
without being named here. A refused admin gets the "Not open to your role" page
(403) before any form is read; an allowed one reaches the view: for a POST, its
CSRF check, sent here with a wrong token so that the walk changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.routing import Route

from billportal import _links
from billportal.app import dashboard_router
from billportal.core.errors import Refused
from billportal.services import admins as roles
from billportal.services.api_keys import SCOPES
from billportal.services.audit import ACTIONS, CLI
from billportal.web.context import Context
from billportal.web.guards import AREAS, DECLARED, ROLE_AREAS, SCOPE_AREAS, declared, role_opens
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import (
    ADMIN_EMAIL,
    PASSWORD,
    Dashboard,
    attempt_sign_in,
    form_token,
    make_admin,
    sign_in,
)
from tests.security.test_authorization import Forms

REFUSED = "Not open to your role"
FORM_COOKIE = "__Host-bp_admin_form"
EXPIRED = "This form has expired"
ADMINS = "/settings/admins"
NEW_PASSWORD = "a password of the invited admin"
_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclass(frozen=True)
class Walked:
    method: str
    path: str  # the route's path, as declared
    url: str  # with every parameter filled
    area: str
    form: bool


def walk(world: World) -> list[Walked]:
    """Every route of the dashboard that declares an admin guard, each parameter naming nothing (999999)."""
    walked: list[Walked] = []
    for route in dashboard_router(Context(world.settings, world.store, world.clock)).routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        guard = declared(route.endpoint)
        if guard is None:
            continue  # public: the sign-in and invitation pages (tests/security/test_dashboard_routes.py)
        assert guard.session == "admin", route.path
        assert guard.area in AREAS, route.path
        url = _PARAMETER.sub("999999", route.path)
        walked.extend(Walked(method, route.path, url, guard.area, guard.form) for method in route.methods - {"HEAD"})
    return walked


def signed_in_as(world: World, role: str, email: str | None = None) -> Dashboard:
    """An admin of acme in ``role``, signed in (the home page is open to every role)."""
    email = email or f"{role.replace('_', '-')}@acme.example"
    make_admin_in(world, email, role)
    client = world.client("dashboard")
    assert attempt_sign_in(client, email, PASSWORD).status_code == 303
    home = client.get("/")
    assert home.status_code == 200, home.text
    return Dashboard(client, form_token(home.text))


def make_admin_in(world: World, email: str, role: str, company: str = "acme") -> int:
    company_id = world.company(company).id
    return run(factories.admin(world.store, email, PASSWORD, company_id, now=world.clock.now, role=role))


def refused(response: httpx.Response) -> bool:
    return response.status_code == 403 and REFUSED in response.text


# -- the matrix --------------------------------------------------------------------------------------------


def test_every_role_is_defined_and_opens_its_own_account() -> None:
    assert set(ROLE_AREAS) == set(roles.ROLES)
    for role, areas in ROLE_AREAS.items():
        assert "account" in areas, role
        assert areas <= set(AREAS), role
    assert ROLE_AREAS["owner"] == set(AREAS)
    assert "admins" not in ROLE_AREAS["admin"]
    assert ROLE_AREAS["developer"] == {"account", "developer"}
    assert ROLE_AREAS["billing"] == {"account", "billing"}
    assert not role_opens("read_only", "company", writes=True)
    assert role_opens("read_only", "account", writes=True)


@pytest.mark.parametrize("role", list(roles.ROLES))
def test_every_route_under_every_role(world: World, role: str) -> None:
    routes = walk(world)
    areas = {route.area for route in routes}
    assert areas == set(AREAS), "every area has a route to walk"
    admin = signed_in_as(world, role)
    before = run(world.store.admins.audit_events(world.acme.id))
    for route in routes:
        if route.method == "GET":
            response = admin.get(route.url)
        else:
            # A wrong token: an allowed admin gets as far as the CSRF check, and nothing changes either way.
            response = admin.client.post(route.url, data={"csrf_token": "not-the-session-token"})
        allowed = role_opens(role, route.area, writes=route.form)
        label = (role, route.method, route.path, response.status_code)
        assert response.status_code < 500, label
        if allowed:
            assert not refused(response), label
            if route.method == "POST":
                assert response.status_code == 403, label
                assert EXPIRED in response.text, label
        else:
            assert refused(response), label
            assert "set-cookie" not in response.headers, label
    # The walk changed nothing (no audit line but this admin's sign-in).
    assert run(world.store.admins.audit_events(world.acme.id)) == before


def test_a_refused_page_is_friendly_and_says_what_the_role_may_do(world: World) -> None:
    reader = signed_in_as(world, "read_only")
    page = reader.get(ADMINS)
    assert refused(page)
    assert "Read-only" in page.text
    assert "An owner of Acme Corporation can change your role" in page.text
    post = reader.post("/settings/company", {"name": "Mallory Inc"})
    assert refused(post)
    assert "you can read this part of the dashboard, not change it" in post.text
    assert world.company("acme").name == "Acme Corporation"
    developer = signed_in_as(world, "developer")
    page = developer.get("/customers")
    assert refused(page)
    assert "not open to that role" in page.text


@pytest.mark.parametrize("role", list(roles.ROLES))
def test_the_menu_shows_what_the_role_opens(world: World, role: str) -> None:
    admin = signed_in_as(world, role)
    nav = admin.get("/").text.split('<nav class="sidenav"', 1)[1].split("</nav>", 1)[0]
    links = set(re.findall(r'href="([^"]+)"', nav))
    pages = {route.path: route.area for route in walk(world) if route.method == "GET" and "{" not in route.path}
    shown_areas = set()
    for link in links:
        assert link in pages, link
        assert role_opens(role, pages[link]), (role, link)
        assert admin.get(link).status_code == 200, (role, link)
        shown_areas.add(pages[link])
    # Each area the role opens has its entry (the ones with pages: "admins" only for owners).
    assert shown_areas == {area for area in ROLE_AREAS[role] if area in pages.values()}


def test_allowed_roles_really_change_what_they_open(world: World) -> None:
    developer = signed_in_as(world, "developer")
    assert developer.post("/settings/developers/sso/keys/rotate", {"grace": "1h"}).status_code == 303
    billing = signed_in_as(world, "billing")
    assert billing.get("/customers").status_code == 200
    assert refused(billing.post("/settings/developers/sso/keys/rotate", {"grace": "1h"}))
    admin = signed_in_as(world, "admin")
    assert admin.post("/settings/company", {"name": "Acme Corp"}).status_code == 303
    assert world.company("acme").name == "Acme Corp"
    reader = signed_in_as(world, "read_only")
    assert reader.get("/settings/developers/sso/log.csv").status_code == 200
    # Every role keeps its own account: a read-only admin changes their password.
    changed = reader.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert changed.status_code == 303


def test_a_role_is_per_company(world: World) -> None:
    """One admin, owner of acme and billing in globex: the role follows the company being administered."""
    admin_id = make_admin_in(world, "two.hats@acme.example", "owner")
    run(world.store.admins.grant(admin_id, world.globex.id, "billing"))
    client = world.client("dashboard")
    assert attempt_sign_in(client, "two.hats@acme.example", PASSWORD).status_code == 303
    dashboard = Dashboard(client, form_token(client.get("/").text))
    assert dashboard.post("/switch", {"company_id": str(world.acme.id)}).status_code == 303
    assert dashboard.get(ADMINS).status_code == 200
    switched = dashboard.post("/switch", {"company_id": str(world.globex.id)})
    assert switched.headers["location"] == "/"  # the home page, which every role opens
    assert refused(dashboard.get(ADMINS))
    assert dashboard.get("/customers").status_code == 200


def test_every_api_operation_declares_an_area() -> None:
    import billportal.app  # noqa: F401 - builds the API's routes, whose operations declare their guards

    assert set(SCOPE_AREAS) == set(SCOPES)
    api_guards = [guard for guard in DECLARED.values() if guard.session == "api_key"]
    assert api_guards
    for guard in api_guards:
        assert guard.area == SCOPE_AREAS[guard.scope]
        assert guard.area in AREAS


# -- the Admins page --------------------------------------------------------------------------------------


def owner(world: World) -> Dashboard:
    make_admin(world)
    return sign_in(world)


def invite(world: World, inviter: Dashboard, email: str, role: str) -> str:
    """Invite; answers the link shown once on the page after the redirect."""
    response = inviter.post(f"{ADMINS}/invite", {"email": email, "role": role, "password": PASSWORD})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"{ADMINS}?invited=")
    page = inviter.get(location)
    assert page.status_code == 200
    link = re.search(r'id="invitation-link"[^>]*value="([^"]+)"', page.text)
    assert link, page.text
    again = inviter.get(location)
    assert "was shown once" in again.text
    assert link.group(1) not in again.text
    return link.group(1).replace("&amp;", "&")


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def accept(world: World, token: str, fields: dict[str, str]) -> httpx.Response:
    client = world.client("dashboard")
    page = client.get("/invitation", params={"token": token})
    assert page.status_code == 200, page.text
    form = next(f for f in Forms(page.text).forms if f["action"] == "/invitation")
    response: httpx.Response = client.post("/invitation", data={**form["fields"], **fields})
    return response


def test_an_owner_invites_an_admin_who_accepts_once(world: World) -> None:
    ada = owner(world)
    link = invite(world, ada, "Bugs@Acme.example", "billing")
    dashboard = _links.portal_url("dashboard", world.settings.base_url)
    assert link.startswith(f"{dashboard}/invitation?token=bp_inv_")
    token = token_of(link)
    # Pending on the Admins page; its token is stored only hashed.
    page = ada.get(ADMINS).text
    assert "bugs@acme.example" in page
    assert token not in page
    rows = run(world.store.read(lambda conn: conn.exec_driver_sql("SELECT * FROM admin_invitations").all()))
    assert token not in repr(rows)
    assert roles.hash_token(token) in [row.token_hash for row in rows]

    short = accept(world, token, {"password": "short", "confirm_password": "short"})
    assert short.status_code == 400
    differ = accept(world, token, {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD + "!"})
    assert differ.status_code == 400
    accepted = accept(world, token, {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/sign-in?notice=invitation_accepted"

    # Used once: the link, the form and a replay of the form are all refused.
    client = world.client("dashboard")
    assert client.get("/invitation", params={"token": token}).status_code == 410
    members = {m.admin.email: m.role for m in run(roles.members_of(world.store, world.acme.id))}
    assert members == {ADMIN_EMAIL: "owner", "bugs@acme.example": "billing"}

    bugs = world.client("dashboard")
    assert attempt_sign_in(bugs, "bugs@acme.example", NEW_PASSWORD).status_code == 303
    assert bugs.get("/customers").status_code == 200
    assert refused(bugs.get(ADMINS))
    assert ada.get(ADMINS).status_code == 200
    assert "Pending invitations" not in ada.get(ADMINS).text  # accepted: no longer pending

    trail = run(world.store.admins.audit_events(world.acme.id))
    actions = {e.action: e for e in trail}
    assert actions["admin.invited"].actor == ADMIN_EMAIL
    assert actions["admin.invited"].detail.startswith("bugs@acme.example: invited as billing")
    assert actions["admin.invitation_accepted"].actor == "bugs@acme.example"
    assert actions["admin.invitation_accepted"].detail == "bugs@acme.example: role none -> billing"
    assert actions["admin.invitation_accepted"].ip
    assert all(token not in e.detail for e in trail)


def test_a_replayed_acceptance_makes_one_membership(world: World) -> None:
    ada = owner(world)
    token = token_of(invite(world, ada, "daffy@acme.example", "developer"))
    client = world.client("dashboard")
    page = client.get("/invitation", params={"token": token})
    fields = next(f for f in Forms(page.text).forms if f["action"] == "/invitation")["fields"]
    fields |= {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    form_cookie = client.cookies[FORM_COOKIE]
    answers = []
    for _ in range(3):
        client.cookies.set(FORM_COOKIE, form_cookie)  # the acceptance clears it: a replay sends it again
        answers.append(client.post("/invitation", data=fields).status_code)
    assert answers == [303, 410, 410]
    assert [m.role for m in run(roles.members_of(world.store, world.acme.id)) if m.admin.email.startswith("daffy")] == [
        "developer"
    ]


def test_an_existing_admin_accepts_with_their_own_password(world: World) -> None:
    ada = owner(world)
    make_admin_in(world, "hank@globex.example", "owner", company="globex")
    token = token_of(invite(world, ada, "hank@globex.example", "read_only"))
    page = world.client("dashboard").get("/invitation", params={"token": token})
    assert "already have a billportal account" in page.text
    assert "confirm_password" not in page.text
    wrong = accept(world, token, {"password": "not hank's password"})
    assert wrong.status_code == 403
    assert accept(world, token, {"password": PASSWORD}).status_code == 303
    hank = sign_in(world, email="hank@globex.example")
    assert hank.post("/switch", {"company_id": str(world.acme.id)}).status_code == 303
    assert hank.get("/customers").status_code == 200
    assert refused(hank.post("/settings/company", {"name": "Hanks Corp"}))
    memberships = run(world.store.admins.memberships(hank_id(world)))
    assert {(m.username, m.role) for m in memberships} == {("acme", "read_only"), ("globex", "owner")}


def hank_id(world: World) -> int:
    admin = run(world.store.admins.admin_by_email("hank@globex.example"))
    assert admin is not None
    return admin.id


def test_an_invitation_expires(world: World) -> None:
    ada = owner(world)
    token = token_of(invite(world, ada, "elmer@acme.example", "billing"))
    client = world.client("dashboard")
    page = client.get("/invitation", params={"token": token})
    fields = next(f for f in Forms(page.text).forms if f["action"] == "/invitation")["fields"]
    world.clock.advance(roles.INVITATION_SECONDS)
    expired = client.get("/invitation", params={"token": token})
    assert expired.status_code == 410
    assert "expired" in expired.text
    posted = client.post("/invitation", data=fields | {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert posted.status_code == 410
    assert run(world.store.admins.admin_by_email("elmer@acme.example")) is None
    assert "elmer@acme.example" not in ada.get(ADMINS).text


@pytest.mark.parametrize(
    "token",
    ["", "bp_inv_", "bp_inv_" + "A" * 43, "eyJhbGciOi", "bp_inv_" + "x" * 5000, "bp_inv_\x00", "bp_inv_\u00e9\u00e9"],
)
def test_a_bad_invitation_token_is_a_friendly_404(world: World, token: str) -> None:
    client = world.client("dashboard")
    page = client.get("/invitation", params={"token": token})
    assert page.status_code == 404
    assert "This invitation link is not valid" in page.text
    form_page = client.get("/sign-in")
    csrf = form_token(form_page.text)
    posted = client.post(
        "/invitation",
        data={"csrf_token": csrf, "token": token, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert posted.status_code == 404


def test_accepting_needs_the_pages_form_cookie(world: World) -> None:
    ada = owner(world)
    token = token_of(invite(world, ada, "porky@acme.example", "billing"))
    fields = {"token": token, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    forged = world.client("dashboard").post("/invitation", data=fields | {"csrf_token": "forged"})
    assert forged.status_code == 403
    assert run(world.store.admins.admin_by_email("porky@acme.example")) is None
    assert accept(world, token, {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}).status_code == 303


def test_inviting_checks_its_fields_and_asks_for_the_password(world: World) -> None:
    ada = owner(world)
    fresh = sign_in(world)  # a session that has not confirmed the password yet
    asked = fresh.post(f"{ADMINS}/invite", {"email": "x@acme.example", "role": "billing"})
    assert asked.status_code == 200
    assert "Confirm your password" in asked.text
    for email, role, field in (
        ("not an email", "billing", "Enter an email address"),
        ("x@acme.example", "superuser", "Choose a role from the list"),
        (ADMIN_EMAIL, "billing", "is already an admin of Acme Corporation"),
    ):
        response = ada.post(f"{ADMINS}/invite", {"email": email, "role": role, "password": PASSWORD})
        assert response.status_code == 400, email
        assert field in response.text
    assert run(roles.pending(world.store, world.acme.id, world.clock.now)) == []


# -- role changes, removal and the last owner -------------------------------------------------------------


def test_the_last_owner_is_kept(world: World) -> None:
    ada = owner(world)
    ada_id = run(world.store.admins.admin_by_email(ADMIN_EMAIL))
    assert ada_id is not None
    bob = make_admin_in(world, "bob@acme.example", "owner")
    page = ada.get(ADMINS).text
    assert f"{ADMINS}/{bob}/role" in page
    assert f"{ADMINS}/{ada_id.id}/role" not in page  # not one's own
    # Bob, an owner, is demoted: Ada is then the last owner.
    response = ada.post(f"{ADMINS}/{bob}/role", {"role": "developer"})
    assert response.status_code == 303
    assert "(the last owner)" in ada.get(ADMINS).text
    # Nobody demotes or removes the last owner: not from the page (the forms are not there), not by posting.
    for path, data in (("role", {"role": "admin"}), ("remove", {})):
        refused_self = ada.post(f"{ADMINS}/{ada_id.id}/{path}", data)
        assert refused_self.status_code == 409
    with pytest.raises(Refused, match="last owner"):
        run(roles.change_role(world.store, world.acme, ada_id.id, role="admin", actor=CLI, now=world.clock.now))
    with pytest.raises(Refused, match="last owner"):
        run(roles.remove(world.store, world.acme, ada_id.id, CLI, world.clock.now))
    # With two owners again, one can go.
    assert ada.post(f"{ADMINS}/{bob}/role", {"role": "owner"}).status_code == 303
    run(roles.change_role(world.store, world.acme, ada_id.id, role="admin", actor=CLI, now=world.clock.now))
    assert refused(ada.get(ADMINS))  # Ada, now an admin, no longer opens the Admins page


def test_a_removed_admin_loses_the_company_at_the_next_click(world: World) -> None:
    ada = owner(world)
    make_admin_in(world, "taz@acme.example", "developer")
    taz = sign_in(world, email="taz@acme.example")
    taz_id = run(world.store.admins.admin_by_email("taz@acme.example"))
    assert taz_id is not None
    assert ada.post(f"{ADMINS}/{taz_id.id}/remove").status_code == 303
    page = taz.get("/settings/developers/sso")
    assert "No company to administer" in page.text
    assert "taz@acme.example" not in ada.get(ADMINS).text
    # Missing ones, and admins of another company, are answered alike.
    hank = make_admin_in(world, "hank@globex.example", "owner", company="globex")
    for missing in (taz_id.id, hank, 999999, 2**40):
        assert ada.post(f"{ADMINS}/{missing}/remove").status_code == 404
        assert ada.post(f"{ADMINS}/{missing}/role", {"role": "billing"}).status_code == 404
    assert [m.role for m in run(world.store.admins.memberships(hank))] == ["owner"]


def test_every_change_is_in_the_audit_trail_with_who_where_and_old_and_new(world: World) -> None:
    ada = owner(world)
    bob = make_admin_in(world, "bob@acme.example", "developer")
    assert ada.post(f"{ADMINS}/{bob}/role", {"role": "billing"}).status_code == 303
    assert ada.post(f"{ADMINS}/{bob}/role", {"role": "billing"}).status_code == 303  # unchanged: no line
    assert ada.post(f"{ADMINS}/{bob}/remove").status_code == 303
    trail = [e for e in run(world.store.admins.audit_events(world.acme.id)) if e.action.startswith("admin.r")]
    assert [(e.action, e.actor, e.detail) for e in reversed(trail)] == [
        ("admin.role_changed", ADMIN_EMAIL, "bob@acme.example: role developer -> billing"),
        ("admin.removed", ADMIN_EMAIL, "bob@acme.example: role billing -> removed"),
    ]
    assert all(e.ip and e.user_agent for e in trail)
    page = ada.get("/audit").text
    assert ACTIONS["admin.role_changed"].replace("'", "&#39;") in page
    assert "bob@acme.example: role developer -&gt; billing" in page
