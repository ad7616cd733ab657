"""Authorization and CSRF on every route of the dashboard, found by walking its router.

The dashboard (``dashboard.{base}``) is where a company's admins hold its SSO keys.
Every route of :func:`billportal.app.dashboard_router` is public (listed in
DASHBOARD_PUBLIC_ROUTES with why) or protected, and protected routes are tested
without being named: with no admin session each one sends the browser to sign
in (or answers 401/403), never data and never a 5xx; an admin of acme (and of
initech, never of globex) cannot read or change globex's keys, policy, sign-in
log, CSV, customers or audit trail, by switching company or by passing globex's
ids; every state-changing form carries its session's CSRF token and refuses a
missing or wrong one with 403, changing nothing in the database. A new route
fails ``test_every_dashboard_route_is_classified`` until its path parameters are
known here (DASHBOARD_PARAMETERS) or it is listed as public.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from starlette.routing import Mount, Route, Router
from starlette.testclient import TestClient

from billportal.app import dashboard_router
from billportal.web.context import Context
from billportal.web.guards import declared
from tests import factories
from tests.conftest import ACME_KEY, GLOBEX_KEY, World, run
from tests.functional.dashboard_support import (
    ADMIN_COOKIE,
    ADMIN_EMAIL,
    PASSWORD,
    SSO,
    Dashboard,
    form_token,
    make_admin,
    sign_in,
)
from tests.functional.test_signin import COOKIE
from tests.security.conftest import HS256, database, good_claims, signed
from tests.security.test_authorization import Forms

# (method, path) -> why it needs no admin session.
DASHBOARD_PUBLIC_ROUTES = {
    ("GET", "/sign-in"): "the sign-in form",
    ("POST", "/sign-in"): "signs in; its CSRF token is tied to a form cookie (test_sign_in_refuses_a_forged_form)",
    ("MOUNT", "/static"): "the stylesheets",
    ("GET", "/favicon.ico"): "the icon browsers ask for, the same for everyone",
    ("MOUNT", "/api/v1"): "the REST API, with its own keys (test_api_routes.py)",
    ("GET", "/invitation"): "an invitation's page: its single-use token is the key (test_dashboard_roles.py)",
    ("POST", "/invitation"): "accepts an invitation; its CSRF token is tied to a form cookie (test_dashboard_roles.py)",
}
# A path parameter -> what it names, always within the company being administered.
DASHBOARD_PARAMETERS = {
    "kid": "one of the company's SSO keys",
    "key_id": "one of the company's API keys, by id or by its shown prefix",
    "payment_id": "one of the company's payments",
    "customer_id": "one of the company's customers",
    "endpoint_id": "one of the company's webhook endpoints",
    "admin_id": "one of the company's admins",
    "invoice_id": "one of the company's invoices",
    "credit_note_id": "one of the company's credit notes",
    "estimate_id": "one of the company's estimates",
}
# A value of each parameter that names nothing at all.
MISSING = {
    "kid": "sso_000000000000",
    "key_id": "999999",
    "payment_id": "999999",
    "endpoint_id": "999999",
    "customer_id": "999999",
    "admin_id": "999999",
    "invoice_id": "999999",
    "credit_note_id": "999999",
    "estimate_id": "999999",
}
# The parameters of pages (GET): each page is walked with the ids of the administered company's own rows.
PAGE_PARAMETERS = frozenset({"payment_id", "customer_id", "invoice_id", "credit_note_id", "estimate_id"})

HANK = "hank@globex.example"
INITECH_KEY = "initech-sso-key-0123456789abcdefghijklm"
NEW_PASSWORD = "a brand new password for the suite"
# What an admin types into a form's empty fields.
TYPED = {
    "customer": "1234",
    "token": "not.a.token",
    "password": PASSWORD,
    "current_password": PASSWORD,
    "new_password": NEW_PASSWORD,
    "confirm_password": NEW_PASSWORD,
    "grace": "1h",
    "name": "Security suite key",
    "secret_key": "sk_test_security_suite",
    "webhook_secret": "whsec_security_suite",
    "url": "https://suite.hooks.example/in",
    "description": "Security suite endpoint",
    "email": "suite@contacts.example",
}
# What the control of a form with a path parameter types besides the password (the form's own fields).
CUSTOMERS = "/customers"
CONTROL_FIELDS: dict[str, dict[str, str]] = {
    f"{CUSTOMERS}/{{customer_id:int}}/contacts": {"name": "Suite", "email": "suite@contacts.example", "role": "view"},
    f"{CUSTOMERS}/{{customer_id:int}}/contacts/change": {"role": "pay"},
}
# What an admin types into a document's form (kept apart from TYPED, which every form gets at once).
TYPED_DOCUMENT = {
    "customer_id": "1234",
    "payer_id": "1234",
    "amount": "1.00",
    "line1_description": "Security suite line",
    "line1_unit_price": "1.00",
}
# Text only the globex side of the world contains: its name, its admin, its customers, its log and keys.
GLOBEX_MARKERS = ("Globex", "globex", "OTHERCO", HANK, "Hank Scorpio", "Homer Simpson", GLOBEX_KEY)
# Hostile values for query parameters and form fields: none may cause a 5xx.
HOSTILE = ["\u00b2", "\u0661\u0662", "\uff11", "9" * 5000, "-1", "0", str(2**63), "1e3", "\x00", "%00"]


def routes_of(router: Router) -> list[tuple[str, str]]:
    """(method, path) for every route of a router; ("MOUNT", path) for a mount."""
    found = []
    for route in router.routes:
        if isinstance(route, Mount):
            found.append(("MOUNT", route.path))
        else:
            assert isinstance(route, Route)
            assert route.methods is not None
            found.extend((method, route.path) for method in sorted(route.methods - {"HEAD"}))
    return found


def the_router(world: World) -> Router:
    return dashboard_router(Context(world.settings, world.store, world.clock))


def dashboard_routes(world: World) -> list[tuple[str, str]]:
    return routes_of(the_router(world))


def protected(world: World, method: str) -> list[str]:
    """The protected routes of a method; a page with a path parameter once for each of acme's own rows."""
    paths = [path for m, path in dashboard_routes(world) if m == method and (m, path) not in DASHBOARD_PUBLIC_ROUTES]
    if method != "GET":
        return paths
    payments, _ = run(world.billing.listing("payment", world.acme.id, limit=3))
    own = {"payment_id": [str(payment.id) for payment in payments], "customer_id": ["1234", "1235"]}
    for kind in ("invoice", "credit_note", "estimate"):
        found, _ = run(world.billing.listing(kind, world.acme.id, limit=10))
        own[f"{kind}_id"] = [str(document.id) for document in found]
    return [url for path in paths for url, _ in fillings(path, own)]


def parameters(path: str) -> list[str]:
    return re.findall(r"\{(\w+)(?::\w+)?\}", path)


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda match: values[match.group(1)], path)


def fillings(path: str, values: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(url, the value put in) for each value of the path's parameter (the path itself if it has none)."""
    names = parameters(path)
    assert len(names) <= 1, f"{path}: teach the suite paths with several parameters"
    return [(fill(path, {name: value}), value) for name in names for value in values[name]] or [(path, "")]


def segment(value: str) -> str:
    """A path segment that the server receives as exactly ``value``."""
    return quote(value, safe="").replace(".", "%2E")


def route_for(world: World, action: str) -> str | None:
    """The POST route a form's action reaches."""
    for route in the_router(world).routes:
        if isinstance(route, Route) and route.methods and "POST" in route.methods and route.path_regex.match(action):
            return route.path
    return None


# -- the world: two tenants with data to leak ---------------------------------------------------------------


@dataclass
class Tenants:
    """acme's admin (also of initech, never of globex) and globex's admin, each with data on their side."""

    acme: Dashboard
    globex: Dashboard
    hank_id: int
    customer: TestClient  # a customer of acme, signed in to the portal
    acme_values: dict[str, list[str]]  # parameter -> the values that name acme's rows
    globex_values: dict[str, list[str]]  # ... and globex's
    globex_secrets: list[str]  # its API keys

    def acme_markers(self) -> tuple[str, ...]:
        kids = self.acme_values["kid"]
        return ("Acme Corporation", ADMIN_EMAIL, "Wile E. Coyote", "MINE-AGENT", ACME_KEY, *kids)

    def globex_markers(self) -> tuple[str, ...]:
        prefixes = [value for value in self.globex_values["key_id"] if not value.isdigit()]
        return (*GLOBEX_MARKERS, *self.globex_values["kid"], *prefixes, *self.globex_secrets)


def customer_visits(world: World, company: str, customer_id: int, key: str, agent: str) -> TestClient:
    """A customer signs in (and someone fails to), leaving lines in the company's sign-in log and a live session."""
    client = world.client(company, headers={"user-agent": agent})
    token = signed(HS256, good_claims(world, sub=customer_id), key)
    assert client.get(f"/login/{token}").status_code == 303
    assert world.client(company, headers={"user-agent": agent}).get("/login/not-a-token").status_code == 401
    return client


@pytest.fixture
def tenants(world: World) -> Tenants:
    customer = customer_visits(world, "acme", 1234, ACME_KEY, "MINE-AGENT")
    customer_visits(world, "globex", 77, GLOBEX_KEY, "OTHERCO-AGENT")
    run(factories.company(world.store, "initech", INITECH_KEY, name="Initech", now=world.clock.now))
    admin_id = make_admin(world)
    run(world.store.admins.grant(admin_id, world.company("initech").id))
    # Other admins of acme, whose role and membership forms show (one is removed by the forms' own test).
    other_acme_admin = make_admin(world, email="road.runner@acme.example")
    make_admin(world, email="wile.e@acme.example")
    hank_id = make_admin(world, email=HANK, company="globex")

    globex = sign_in(world, email=HANK, headers={"user-agent": "OTHERCO-AGENT"})
    policy = {"leeway": "45", "max_lifetime": "1h", "allowed_issuers": "OTHERCO-ISSUER\nRuby Backend"}
    assert globex.post(f"{SSO}/policy", policy).status_code == 303
    assert globex.post(f"{SSO}/keys/rotate", {"grace": "1h"}).status_code == 303  # a retiring key to aim at
    assert globex.post(f"{SSO}/revoke/links").status_code == 303  # a cutoff to remove
    assert globex.post(f"{SSO}/try/link", {"customer": "77", "password": PASSWORD}).status_code == 200

    acme = sign_in(world)
    # A retiring key and a cutoff: the forms that revoke the one and remove the other appear.
    assert acme.post(f"{SSO}/keys/rotate", {"grace": "1h"}).status_code == 303
    assert acme.post(f"{SSO}/revoke/links").status_code == 303

    acme_api = run(factories.api_key(world.store, world.acme, name="MINE sync", now=world.clock.now)).info
    # A contact of acme's customer 1234: the form that changes or removes one appears.
    mine = run(factories.contact(world.store, world.acme, 1234, now=world.clock.now, email="mine@contacts.example"))
    CONTROL_FIELDS[f"{CUSTOMERS}/{{customer_id:int}}/contacts/change"]["contact"] = str(mine.id)
    acme_paid = run(factories.payment(world.store, world.acme.id, 1234, now=world.clock.now, amount=4200))
    globex_paid = run(factories.payment(world.store, world.globex.id, 77, now=world.clock.now, amount=4300))
    # A draft and an issued document of each kind: the forms that issue, delete and void them appear.
    documents = {
        company_id: tuple(
            run(make(world.store, company_id, customer_id, now=world.clock.now, status=status))
            for make, status in (
                (factories.invoice, "draft"),
                (functools.partial(factories.credit_note, lines=factories.LINES), "draft"),
                (factories.estimate, "draft"),
                (functools.partial(factories.credit_note, lines=factories.LINES), "open"),
                (factories.estimate, "sent"),
            )
        )
        for company_id, customer_id in ((world.acme.id, 1234), (world.globex.id, 77))
    }
    globex_api = [
        run(factories.api_key(world.store, world.globex, name="OTHERCO sync", now=world.clock.now)) for _ in range(2)
    ]
    acme_hook = run(
        factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now, url="https://mine.hooks.example/in")
    )
    globex_hook = run(
        factories.webhook_endpoint(
            world.store,
            world.globex.id,
            now=world.clock.now,
            url="https://otherco.hooks.example/in",
            description="OTHERCO hooks",
        )
    )
    return Tenants(
        acme=acme,
        globex=globex,
        hank_id=hank_id,
        customer=customer,
        acme_values={
            "kid": [k.kid for k in world.company("acme").sso_keys],
            "key_id": [str(acme_api.id)],
            "payment_id": [str(acme_paid.id)],
            "customer_id": ["1234"],
            "endpoint_id": [str(acme_hook.endpoint.id)],
            "admin_id": [str(other_acme_admin)],
            **_document_values(documents[world.acme.id]),
        },
        globex_values={
            "kid": [k.kid for k in world.company("globex").sso_keys],  # the active key and the retiring one
            "key_id": [str(globex_api[0].info.id), globex_api[1].info.prefix, globex_api[1].info.prefix + "\u2026"],
            "payment_id": [str(globex_paid.id)],
            "customer_id": ["77"],  # Globex's only: both companies have a customer 1234
            "endpoint_id": [str(globex_hook.endpoint.id)],
            "admin_id": [str(hank_id)],
            **_document_values(documents[world.globex.id]),
        },
        globex_secrets=[created.key for created in globex_api],
    )


def _document_values(made: tuple[Any, ...]) -> dict[str, list[str]]:
    kinds = ("invoice", "credit_note", "estimate")
    return {f"{kind}_id": [str(document.id)] for kind, document in zip(kinds, made, strict=False)}


def globex_state(world: World, tenants: Tenants) -> dict[str, list[str]]:
    """Everything of globex's: company, keys, policy, customers, sessions (customers' and admins'), logs."""
    state = database(world, "globex", tenants.hank_id)
    for table in ("sso_keys", "sessions", "sign_in_events", "audit_events", "admin_sessions", "admins", "api_keys"):
        assert state[table], f"globex has no {table} to protect: the test would prove nothing"
    return state


# -- the routes are all known -------------------------------------------------------------------------------


def test_every_dashboard_route_is_classified(world: World) -> None:
    routes = dashboard_routes(world)
    assert set(DASHBOARD_PUBLIC_ROUTES) <= set(routes), "a public route listed here no longer exists"
    for method, path in routes:
        if (method, path) in DASHBOARD_PUBLIC_ROUTES:
            continue
        assert method in ("GET", "POST"), f"{method} {path}: add it to the suite"
        parameters = set(re.findall(r"\{(\w+)", path))
        assert parameters <= DASHBOARD_PARAMETERS.keys(), f"{path}: teach the suite its parameters {parameters}"
        if method == "GET":
            assert parameters <= PAGE_PARAMETERS, f"{path}: a page with a path parameter: teach the suite whose it is"


def test_every_protected_route_declares_an_admin_and_every_post_a_checked_form(world: World) -> None:
    router = the_router(world)
    for route in router.routes:
        if not isinstance(route, Route):
            continue
        assert route.methods is not None
        for method in route.methods - {"HEAD"}:
            if (method, route.path) in DASHBOARD_PUBLIC_ROUTES:
                continue
            guard = declared(route.endpoint)
            assert guard is not None, f"{method} {route.path} declares no guard (@admin)"
            assert guard.session == "admin", route.path
            assert guard.form == (method == "POST"), f"{method} {route.path}: a POST reads a checked form, a GET none"


def test_revealing_a_key_declares_a_recent_password(world: World) -> None:
    router = the_router(world)
    reveal = next(r for r in router.routes if isinstance(r, Route) and r.path.endswith("/reveal"))
    guard = declared(reveal.endpoint)
    assert guard is not None
    assert guard.sudo


# -- no admin session, no data ------------------------------------------------------------------------------


def refusal(client: TestClient, response: httpx.Response) -> list[httpx.Response]:
    """The answers an unsigned-in browser gets: 401/403, or redirects on the dashboard that end at sign-in."""
    answers = [response]
    for _ in range(3):
        assert response.status_code < 500, response.url
        if response.status_code in (401, 403):
            return answers
        assert response.status_code in (302, 303, 307), (response.url, response.status_code)
        location = response.headers["location"]
        assert location.startswith("/"), location  # never off the dashboard
        if urlsplit(location).path == "/sign-in":
            return answers
        response = client.get(location)
        answers.append(response)
    raise AssertionError(f"{answers[0].url}: the redirects never reach the sign-in page")


def a_signed_out_cookie(world: World, _tenants: Tenants) -> str:
    admin = sign_in(world)
    cookie = str(admin.client.cookies[ADMIN_COOKIE])
    assert admin.post("/sign-out").status_code == 303
    return cookie


def an_expired_cookie(world: World, _tenants: Tenants) -> str:
    cookie = str(sign_in(world).client.cookies[ADMIN_COOKIE])
    world.clock.advance(world.settings.session_idle_seconds + 1)
    return cookie


def a_sign_in_form_cookie(world: World) -> str:
    client = world.client("dashboard")
    return form_token(client.get("/sign-in").text)


NO_SESSION: dict[str, Callable[[World, Tenants], str | None]] = {
    "no cookie": lambda _world, _tenants: None,
    "forged": lambda _world, _tenants: "forged-session-id",
    "empty": lambda _world, _tenants: "",
    "random 43": lambda _world, _tenants: "a" * 43,
    "a customer's session id": lambda _world, tenants: str(tenants.customer.cookies[COOKIE]),
    "the sign-in form's token": lambda world, _tenants: a_sign_in_form_cookie(world),
    "a signed-out session": a_signed_out_cookie,
    "an expired session": an_expired_cookie,
}


@pytest.mark.parametrize("cookie_of", NO_SESSION.values(), ids=NO_SESSION.keys())
def test_without_an_admin_session_every_route_refuses(
    world: World, tenants: Tenants, cookie_of: Callable[[World, Tenants], str | None]
) -> None:
    cookie = cookie_of(world, tenants)
    client = world.client("dashboard", cookies={ADMIN_COOKIE: cookie} if cookie is not None else None)
    refusal(client, client.get(SSO))  # (an expired session's row is deleted here)
    before = database(world)
    answers = [answer for path in protected(world, "GET") for answer in refusal(client, client.get(path))]
    token = tenants.acme.csrf
    for path in protected(world, "POST"):
        for url, _ in fillings(path, tenants.acme_values):
            data = {**TYPED, "csrf_token": token, "company_id": str(world.acme.id), "grace": "none", "enabled": "off"}
            answers += refusal(client, client.post(url, data=data | {"confirm": "yes"}))
    for answer in answers:
        for marker in tenants.acme_markers():
            assert marker not in answer.text, (answer.url, marker)
    assert database(world) == before
    assert sign_in(world).get(SSO).status_code == 200  # the control: a real session opens the pages


# -- an admin of one company never reaches another's ---------------------------------------------------------


# Query parameters that name globex or its rows, put on every page.
def globex_queries(world: World) -> list[dict[str, str]]:
    globex = world.company("globex")
    events = run(world.store.sign_in_events(globex.id, limit=1))
    audit = run(world.store.admins.audit_events(globex.id, limit=1))
    assert events[0].id is not None
    assert audit[0].id is not None
    return [
        {},
        {"company_id": str(globex.id), "company": "globex", "company_username": "globex"},
        {"customer": "77"},
        {"customer": "1234", "result": "failure"},
        {"before": str(events[0].id + 1)},
        {"before": str(audit[0].id + 1)},
        {"kid": globex.sso_keys[0].kid},
    ]


def test_every_page_shows_only_the_administered_companys_data(world: World, tenants: Tenants) -> None:
    pages = protected(world, "GET")
    assert f"{SSO}/log.csv" in pages
    for path in pages:
        for query in globex_queries(world):
            response = tenants.acme.get(path, params=query)
            assert response.status_code in (200, 400), (path, query, response.status_code)
            if not query and path.endswith(("/pdf", ".csv")) and "log" not in path:
                assert response.content, path  # a document's PDF, a list's CSV: acme's, as the page is
            elif not query:  # the control: the page shows acme's own data
                assert "MINE-AGENT" in response.text if "log" in path else "Acme Corporation" in response.text
            for marker in tenants.globex_markers():
                assert marker not in response.text, (path, query, marker)
    # The pages that show a company's own records do show acme's: the walk above reads real data.
    assert "MINE-AGENT" in tenants.acme.get(f"{SSO}/log").text
    assert "MINE-AGENT" in tenants.acme.get(f"{SSO}/log.csv").text
    assert ADMIN_EMAIL in tenants.acme.get("/audit").text
    assert "Wile E. Coyote" in tenants.acme.get(f"{SSO}/try").text
    assert tenants.acme_values["kid"][0] in tenants.acme.get(SSO).text
    # ... and globex's admin sees globex's: the markers are really there to be leaked.
    for path in (f"{SSO}/log", f"{SSO}/log.csv", "/audit", f"{SSO}/policy", f"{SSO}/try"):
        assert "OTHERCO" in tenants.globex.get(path).text, path


def answer_text(response: httpx.Response, *ids: str) -> str:
    """An answer's text with the ids that were sent taken out, to compare answers to different ids."""
    text = str(response.text)
    for value in ids:  # (not inside a longer word, such as a CSRF token)
        text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", "ID", text)
    return text


def test_switching_to_a_company_one_does_not_administer_is_refused(world: World, tenants: Tenants) -> None:
    before = globex_state(world, tenants)
    globex_id = str(world.globex.id)
    missing = tenants.acme.post("/switch", {"company_id": "999999"})
    assert missing.status_code == 404
    for value in (globex_id, f" {globex_id}", f"0{globex_id}", f"{globex_id}.0", "globex", f"{globex_id}\x00"):
        response = tenants.acme.post("/switch", {"company_id": value})
        assert response.status_code == 404, value
        assert response.text == missing.text, value
    page = tenants.acme.get(SSO)
    assert "Acme Corporation" in page.text
    for marker in tenants.globex_markers():
        assert marker not in page.text
    assert globex_state(world, tenants) == before
    # The control: switching to a company the admin does administer works.
    assert tenants.acme.post("/switch", {"company_id": str(world.company("initech").id)}).status_code == 303
    assert "Initech" in tenants.acme.get(SSO).text


def test_globex_ids_in_the_path_are_answered_as_missing_ones(world: World, tenants: Tenants) -> None:
    before = globex_state(world, tenants)
    routes = [path for path in protected(world, "POST") if parameters(path)]
    assert routes
    role = {"role": "read_only"}  # what the admins' role form sends with the id
    for path in routes:
        name = parameters(path)[0]
        data = {"password": PASSWORD, "confirm": "yes"} | (role if path.endswith("/role") else {})
        missing = tenants.acme.post(fill(path, MISSING), data)
        assert missing.status_code in (404, 409), path
        for url, value in fillings(path, tenants.globex_values):
            response = tenants.acme.post(url, data)
            assert response.status_code == missing.status_code, (path, value)
            ids = (value, MISSING[name])  # on both sides: a date on the page may hold the same digits as an id
            assert answer_text(response, *ids) == answer_text(missing, *ids), (path, value)
            for marker in tenants.globex_markers():
                assert marker not in answer_text(response, value), (path, marker)
    assert globex_state(world, tenants) == before
    # The control: acme's own ids are found (its active key revealed, its retiring key revoked, ...).
    for path in routes:
        control = {"password": PASSWORD, **CONTROL_FIELDS.get(path, {})} | (role if path.endswith("/role") else {})
        answers = [tenants.acme.post(url, control) for url, _ in fillings(path, tenants.acme_values)]
        assert any(answer.status_code in (200, 303) for answer in answers), path


def test_globex_customers_are_answered_as_missing_ones(world: World, tenants: Tenants) -> None:
    before = globex_state(world, tenants)
    for path in (f"{SSO}/revoke/customer", f"{SSO}/try/link"):
        missing = tenants.acme.post(path, {"customer": "999999", "password": PASSWORD})
        theirs = tenants.acme.post(path, {"customer": "77", "password": PASSWORD})  # a customer of globex only
        assert theirs.status_code == missing.status_code, path
        assert theirs.status_code in (400, 404), path
        assert answer_text(theirs, "77", "999999") == answer_text(missing, "77", "999999"), path
        # The control: acme's own customer 1234 is found.
        assert tenants.acme.post(path, {"customer": "1234", "password": PASSWORD}).status_code == 200, path
    assert globex_state(world, tenants) == before


def test_no_form_of_an_acme_admin_changes_anything_of_globex(world: World, tenants: Tenants) -> None:
    """Every POST route, submitted by acme's admin with globex's ids wherever it takes one."""
    before = globex_state(world, tenants)
    globex_ids = {
        "company_id": str(world.globex.id),
        "customer": "77",
        "enabled": "off",
        "grace": "none",
        "leeway": "0",
        "allowed_issuers": "MALLORY",
    }
    posts = protected(world, "POST")
    posts.sort(key=lambda path: path in ("/sign-out", "/account/password"))  # the ones that end sessions last
    for path in posts:
        for url, value in fillings(path, tenants.globex_values):
            response = tenants.acme.post(url, {**TYPED, **globex_ids, "confirm": "yes"})
            assert response.status_code < 500, (path, response.status_code)
            for marker in tenants.globex_markers():
                assert marker not in answer_text(response, value), (path, marker)
    assert globex_state(world, tenants) == before
    # The control: the same forms did change acme.
    acme = world.company("acme")
    assert not acme.sso_enabled
    assert acme.policy.leeway == 0


# -- CSRF ---------------------------------------------------------------------------------------------------


def post_forms(world: World, admin: Dashboard) -> Iterator[tuple[str, dict[str, Any]]]:
    """(route, form) for every distinct POST form on every page of the dashboard."""
    seen = set()
    for path in protected(world, "GET"):
        response = admin.get(path)
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        for form in Forms(response.text).forms:
            if form["method"] == "post" and form["action"] not in seen:
                seen.add(form["action"])
                yield route_for(world, form["action"]) or form["action"], form


def test_every_post_form_carries_the_sessions_csrf_token_and_a_known_action(world: World, tenants: Tenants) -> None:
    seen = set()
    for route, form in post_forms(world, tenants.acme):
        assert route in protected(world, "POST"), form["action"]
        assert form["fields"].get("csrf_token") == tenants.acme.csrf, form["action"]
        seen.add(route)
    # Every state-changing route has a form somewhere, so the CSRF tests below reach all of them.
    assert seen == set(protected(world, "POST"))


def typed(form: dict[str, Any], world: World) -> dict[str, str]:
    """A form's fields as an admin would submit them."""
    fields = {name: value or TYPED.get(name) or TYPED_DOCUMENT.get(name, "") for name, value in form["fields"].items()}
    if "company_id" in fields:
        fields["company_id"] = str(world.acme.id)
    return fields


def forged_submissions(world: World, tenants: Tenants) -> dict[str, Callable[[dict[str, str]], dict[str, str]]]:
    token = tenants.acme.csrf
    other_admin = tenants.globex.csrf
    same_admin_other_session = sign_in(world).csrf
    sign_in_form = a_sign_in_form_cookie(world)
    customer_page = tenants.customer.get("/billing-info").text
    customer_session = str(next(f["fields"]["csrf_token"] for f in Forms(customer_page).forms if f["method"] == "post"))
    assert len({token, other_admin, same_admin_other_session, sign_in_form, customer_session}) == 5
    return {
        "no token": lambda fields: {k: v for k, v in fields.items() if k != "csrf_token"},
        "empty token": lambda fields: fields | {"csrf_token": ""},
        "wrong token": lambda fields: fields | {"csrf_token": "x" * len(token)},
        "a prefix of the token": lambda fields: fields | {"csrf_token": token[:-1]},
        "the token twice over": lambda fields: fields | {"csrf_token": token + token},
        "the token in another case": lambda fields: fields | {"csrf_token": token.swapcase()},
        "another admin's token": lambda fields: fields | {"csrf_token": other_admin},
        "the same admin's other session's token": lambda fields: fields | {"csrf_token": same_admin_other_session},
        "a sign-in form's token": lambda fields: fields | {"csrf_token": sign_in_form},
        "a customer session's token": lambda fields: fields | {"csrf_token": customer_session},
    }


def test_every_state_changing_form_refuses_a_forged_request(world: World, tenants: Tenants) -> None:
    forgeries = forged_submissions(world, tenants)
    forms = list(post_forms(world, tenants.acme))
    assert len({route for route, _ in forms}) == len(protected(world, "POST"))
    before = database(world)
    for route, form in forms:
        for name, forge in forgeries.items():
            response = tenants.acme.client.post(form["action"], data=forge(typed(form, world)))
            assert response.status_code == 403, (route, name, response.status_code)
            assert "set-cookie" not in response.headers, (route, name)
    # Nothing changed: no key, policy, password, session, membership, audit line or log line.
    assert database(world) == before
    assert tenants.acme.get(SSO).status_code == 200


def test_every_state_changing_form_accepts_its_own_token(world: World, tenants: Tenants) -> None:
    # The control for the test above: the same forms, submitted as the page made them, work.
    routes = sorted(
        {route for route, _ in post_forms(world, tenants.acme)},
        key=lambda route: (route == "/account/password", route),  # the password last: each sign-in needs it
    )
    for route in routes:
        admin = sign_in(world)
        form = next(form for found, form in post_forms(world, admin) if found == route)
        fields = typed(form, world)
        # The logo's form is multipart: its file is what an admin picks.
        files = (
            {"logo": ("logo.png", factories.logo_png(), "image/png")} if fields.pop("logo", None) is not None else None
        )
        if fields.pop("file", None) is not None:  # Billing > Import: a CSV file
            files = {"file": ("customers.csv", b"id,name\n4001,Imported\n", "text/csv")}
        response = admin.client.post(form["action"], data=fields, files=files)
        assert response.status_code in (200, 303), (route, response.status_code, response.text[:300])


def test_sign_in_refuses_a_forged_form(world: World, tenants: Tenants) -> None:
    before = database(world)
    session_token = tenants.acme.csrf
    for cookie, token in (
        (None, "x"),
        (None, ""),
        ("planted-by-another-site", "planted-by-another-site-but-other"),
        (a_sign_in_form_cookie(world), session_token),
        (a_sign_in_form_cookie(world), ""),
    ):
        client = world.client("dashboard", cookies={"__Host-bp_admin_form": cookie} if cookie else None)
        fields = {"email": ADMIN_EMAIL, "password": PASSWORD} | ({"csrf_token": token} if token else {})
        response = client.post("/sign-in", data=fields)
        assert response.status_code == 403, (cookie, token)
        assert f"{ADMIN_COOKIE}=" not in response.headers.get("set-cookie", "")
    assert database(world) == before  # no session, no audit line


# -- hostile input: 4xx, never 5xx -----------------------------------------------------------------------


def test_hostile_query_parameters_never_cause_a_server_error(world: World, tenants: Tenants) -> None:
    names = ("before", "customer", "result", "reason", "notice", "page", "company_id")
    for path in protected(world, "GET"):
        for name in names:
            for value in HOSTILE:
                response = tenants.acme.get(path, params={name: value})
                assert response.status_code < 500, (path, name, value[:20], response.status_code)


@pytest.mark.usefixtures("tenants")
def test_hostile_sign_in_fields_never_cause_a_server_error(world: World) -> None:
    for name in ("email", "password"):
        for number, value in enumerate([*HOSTILE, f"{ADMIN_EMAIL}\x00"]):
            token = a_sign_in_form_cookie(world)
            address = (f"203.0.113.{number + 1}", 40000)  # (each from its own address: no limit per address)
            client = world.client("dashboard", cookies={"__Host-bp_admin_form": token}, client=address)
            fields = {"csrf_token": token, "email": ADMIN_EMAIL, "password": PASSWORD}
            response = client.post("/sign-in", data=fields | {name: value})
            # 401: the form was read (its token is good) and the email looked up; no admin has these. The
            # failures against one account are limited (and counted across apps with Redis): then 429.
            allowed = (401,) if name == "email" or number < 5 else (401, 429)
            assert response.status_code in allowed, (name, value[:20], response.status_code)
            assert f"{ADMIN_COOKIE}=" not in response.headers.get("set-cookie", "")


def test_hostile_form_fields_and_key_ids_never_cause_a_server_error(world: World, tenants: Tenants) -> None:
    forms = [(route, form) for route, form in post_forms(world, tenants.acme) if route != "/sign-out"]
    for route, form in forms:
        fields = typed(form, world)
        for name in fields:
            if name == "csrf_token":
                continue
            for value in HOSTILE:
                response = tenants.acme.client.post(form["action"], data=fields | {name: value})
                assert response.status_code < 500, (route, name, value[:20], response.status_code)
    for path in [path for path in protected(world, "POST") if parameters(path)]:
        hostile = [*HOSTILE, "..", "x" * 65, "sso_" + "0" * 4000, "bp_live_" + "0" * 4000, str(2**31), "1" * 19]
        values = {name: [segment(value) for value in hostile] for name in parameters(path)}
        for url, value in fillings(path, values):
            response = tenants.acme.post(url, {"password": PASSWORD, "confirm": "yes"})
            assert 400 <= response.status_code < 500, (path, value[:20], response.status_code)
