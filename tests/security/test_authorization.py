"""Authorization and CSRF on every route of the portal, found by walking its router.

Every route is either listed in PUBLIC_ROUTES (with why it needs no session) or
protected, and protected routes are tested without being listed: each page and
PDF needs a live session of this company, shows only the signed-in customer's
data, and answers another customer's (or company's) document exactly as it
answers one that does not exist. Each state-changing form carries the session's
CSRF token and refuses a request without it. A new route fails
``test_every_portal_route_is_classified`` until its path parameters are known
here (DOCUMENT_KINDS) or it is listed as public.

The dashboard and the REST API get the same treatment in test_dashboard_routes.py
and test_api_routes.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from billportal.app import portal_router
from billportal.storage.documents import Scope
from billportal.web.context import Context
from billportal.web.guards import declared
from tests.conftest import World, run
from tests.functional.portal_world import pdf_streams
from tests.functional.test_signin import COOKIE
from tests.security.conftest import (
    DOCUMENT_KINDS,
    KNOWN_PARAMETERS,
    PUBLIC_ROUTES,
    Documents,
    fill,
    kind_of,
    own_url,
    portal_routes,
    protected,
    session_count,
    signed_in,
)

# Text that only another customer's or another company's data contains.
FOREIGN_MARKERS = ("NEIGHBOUR", "OTHERCO", "INV-0003", "GLX-0001", "Road Runner", "Hank Scorpio", "Homer Simpson")
CARD = {"cc-number": "4242 4242 4242 4242", "cc-exp": "12 / 30", "cc-csc": "123"}  # the test gateway's test card
MISSING_IDS = ["999999", "0", str(2**63 - 1), str(2**63), "9" * 19, "9" * 25, "9" * 5000]


def visible_text(response: Any) -> str:
    """A page's HTML, or a PDF's text (its compressed content streams, inflated)."""
    if response.headers.get("content-type", "").startswith("application/pdf"):
        body: bytes = response.content
        return b"".join([body, *pdf_streams(body)]).decode("latin-1")
    return str(response.text)


# -- the routes are all known -------------------------------------------------------------------------------


def test_every_portal_route_is_classified(world: World) -> None:
    routes = portal_routes(world)
    assert set(PUBLIC_ROUTES) <= set(routes), "a public route listed here no longer exists"
    for method, path in routes:
        if (method, path) in PUBLIC_ROUTES:
            continue
        assert method in ("GET", "POST"), f"{method} {path}: add it to the suite"
        parameters = set(re.findall(r"\{(\w+)", path))
        assert parameters <= KNOWN_PARAMETERS, f"{path}: teach the suite its parameters {parameters}"
        if parameters:
            assert path.strip("/").split("/")[0] in DOCUMENT_KINDS, f"{path}: which kind of document is it?"


# POST routes whose forms only some sign-ins see, with the test that checks their CSRF token.
ONLY_FOR_SOME = {
    "/accounts/switch": "the account switcher: only an address with several accounts (test_contact_roles.py)",
}

# Routes that need no declared guard: they deal with whatever session the cookie names themselves.
SELF_GUARDED = {("POST", "/logout"): "ends the cookie's session, live or not; checks its CSRF token when there is one"}


def test_every_protected_route_declares_a_customer_session_and_every_post_a_checked_form(world: World) -> None:
    router = portal_router(Context(world.settings, world.store, world.clock))
    for route in router.routes:
        if not isinstance(route, Route):
            continue
        assert route.methods is not None
        for method in route.methods - {"HEAD"}:
            if (method, route.path) in PUBLIC_ROUTES or (method, route.path) in SELF_GUARDED:
                continue
            guard = declared(route.endpoint)
            assert guard is not None, f"{method} {route.path} declares no guard (@customer or @customer_form)"
            assert guard.session == "customer", route.path
            assert guard.form == (method == "POST"), f"{method} {route.path}: a POST reads a checked form, a GET none"
            assert guard.page, f"{route.path}: where does a remote sign-in bring the customer back to?"


# -- no session, no data ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cookie",
    [None, "forged-session-id", "", "a" * 43, "globex"],
    ids=["no cookie", "forged", "empty", "random 43", "another company's session"],
)
def test_without_a_session_of_this_company_every_route_refuses(
    world: World, documents: Documents, cookie: str | None
) -> None:
    if cookie == "globex":
        cookie = signed_in(world, company="globex").cookies[COOKIE]
    client = world.client(cookies={COOKIE: cookie} if cookie is not None else None)
    for path in protected(world, "GET"):
        response = client.get(own_url(path, documents))
        assert response.status_code == 401, path
        text = visible_text(response)
        assert "MINE" not in text, path
        assert "Wile E. Coyote" not in text, path
    before = snapshot(world, documents)
    for path in protected(world, "POST"):
        response = client.post(own_url(path, documents), data={"csrf_token": "x", "approved_by": "Mallory"})
        # Refused, or (signing out with no session) sent on with nothing done.
        assert 300 <= response.status_code < 500, path
    assert snapshot(world, documents) == before


def snapshot(world: World, documents: Documents) -> tuple[Any, ...]:
    """What a state-changing route could change: the customer, the estimate, the session count."""
    customer = run(world.billing.customer(world.acme.id, 1234))
    estimate = run(world.billing.get("estimate", Scope(world.acme.id, 1234), int(documents.mine["estimate"])))
    return customer, estimate, session_count(world.store)


# -- signed in: only one's own data -------------------------------------------------------------------------


def test_every_page_and_pdf_shows_only_the_signed_in_customers_data(world: World, documents: Documents) -> None:
    client = signed_in(world)
    for path in protected(world, "GET"):
        response = client.get(own_url(path, documents))
        assert response.status_code == 200, path
        text = visible_text(response)
        if "{" in path:
            assert "MINE-" in text, path  # the control: the document's own text can be read
        for marker in FOREIGN_MARKERS:
            assert marker not in text, f"{path} shows {marker}"


@pytest.mark.parametrize("whose", ["neighbour", "other_company"])
def test_another_customers_document_is_answered_as_a_missing_one(
    world: World, documents: Documents, whose: str
) -> None:
    client = signed_in(world)
    for path in protected(world, "GET"):
        if "{" not in path:
            continue
        assert client.get(own_url(path, documents)).status_code == 200, path  # the control
        missing = client.get(fill(path, "999999"))
        assert missing.status_code == 404, path
        theirs = client.get(fill(path, getattr(documents, whose)[kind_of(path)]))
        assert theirs.status_code == 404, path
        assert theirs.text == missing.text, path


def test_ids_out_of_range_are_a_404_never_an_error(world: World, documents: Documents) -> None:
    client = signed_in(world)
    for path in protected(world, "GET") + protected(world, "POST"):
        if "{" not in path:
            continue
        for document_id in MISSING_IDS:
            method = "POST" if (("POST", path) in portal_routes(world)) else "GET"
            url = fill(path, document_id)
            response = client.request(method, url, data={"csrf_token": "x"} if method == "POST" else None)
            assert response.status_code in (403, 404), (path, document_id[:30], response.status_code)
        for malformed in ("-1", "1.5", "0x10", "1e3", "\uff11\uff12", "1%00", " 1"):
            assert client.get(fill(path, malformed)).status_code == 404, (path, malformed)


# Every query parameter a portal page reads: searched text, filters, months and page numbers.
QUERY_PARAMETERS = ("page", "before", "q", "status", "month")
HOSTILE_VALUES = ("\u00b2", "\u0661", "9" * 5000, "-1", "0", str(2**63), "\x00", "INV\x00", "%00", "2026-01\x00")


def test_hostile_query_parameters_are_never_an_error(world: World, documents: Documents) -> None:
    # ?page=² passed str.isdigit() and then failed int(); 5,000 digits are past int()'s limit;
    # ?q=%00 reached PostgreSQL, which refuses a NUL in text (a DataError, answered 500).
    client = signed_in(world)
    for path in protected(world, "GET"):
        for name in QUERY_PARAMETERS:
            for value in HOSTILE_VALUES:
                response = client.get(own_url(path, documents), params={name: value})
                assert response.status_code < 500, (path, name, value[:20], response.status_code)


def test_a_state_change_on_another_customers_document_is_refused(world: World, documents: Documents) -> None:
    client = signed_in(world)
    token = csrf_of(client)
    for path in protected(world, "POST"):
        if "{" not in path:
            continue
        for whose in ("neighbour", "other_company"):
            document_id = getattr(documents, whose)[kind_of(path)]
            response = client.post(fill(path, document_id), data={"csrf_token": token, "approved_by": "Mallory"})
            assert response.status_code == 404, (path, whose)
    for owner, company_id, customer_id in (
        ("neighbour", world.acme.id, 1235),
        ("other_company", world.globex.id, 1234),
    ):
        estimate = run(
            world.billing.get("estimate", Scope(company_id, customer_id), getattr(documents, owner)["estimate"])
        )
        assert estimate is not None
        assert estimate.status == "sent"


# -- CSRF ---------------------------------------------------------------------------------------------------


class Forms(HTMLParser):
    """The forms of a page: method, action and the fields they would submit."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None
        self._select: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self._current = {
                "method": (attributes.get("method") or "get").lower(),
                "action": attributes.get("action") or "",
                "fields": {},
            }
            self.forms.append(self._current)
        elif self._current is not None and tag == "option" and self._select is not None:
            # A select sends its chosen option, or its first one when none is chosen.
            value = attributes.get("value") or ""
            self._current.setdefault("options", {}).setdefault(self._select, []).append(value)
            if self._current["fields"][self._select] is None or "selected" in attributes:
                self._current["fields"][self._select] = value
        elif self._current is not None and tag in ("input", "textarea", "select") and attributes.get("name"):
            if attributes.get("type") in ("checkbox", "radio") and "checked" not in attributes:
                return
            name = attributes["name"]
            self._current["fields"][name] = None if tag == "select" else attributes.get("value") or ""
            self._select = name if tag == "select" else None
            if "required" in attributes:
                self._current.setdefault("required", {})[name] = attributes

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "select" and self._current is not None and self._select is not None:
            self._current["fields"][self._select] = self._current["fields"][self._select] or ""
            self._select = None


def csrf_of(client: TestClient) -> str:
    forms = Forms(client.get("/").text).forms
    return str(next(form["fields"]["csrf_token"] for form in forms if "csrf_token" in form["fields"]))


def post_forms(world: World, documents: Documents, client: TestClient) -> Iterator[tuple[str, dict[str, Any]]]:
    """(page, form) for every POST form on every protected page."""
    for path in protected(world, "GET"):
        response = client.get(own_url(path, documents))
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        for form in Forms(response.text).forms:
            if form["method"] == "post":
                yield own_url(path, documents), form


def route_for(world: World, action: str) -> str | None:
    router = portal_router(Context(world.settings, world.store, world.clock))
    for route in router.routes:
        if isinstance(route, Route) and route.methods and "POST" in route.methods and route.path_regex.match(action):
            return route.path
    return None


def test_every_post_form_carries_the_sessions_csrf_token_and_a_known_action(world: World, documents: Documents) -> None:
    client = signed_in(world)
    token = csrf_of(client)
    seen = set()
    for page, form in post_forms(world, documents, client):
        assert form["fields"].get("csrf_token") == token, (page, form["action"])
        route = route_for(world, form["action"])
        assert route is not None, (page, form["action"])
        seen.add(route)
    # Every state-changing route has a form somewhere, so the CSRF tests below reach all of them.
    assert seen | set(ONLY_FOR_SOME) == set(protected(world, "POST"))


def forged_submissions(world: World, token: str) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    other_session = csrf_of(signed_in(world, customer_id=1235))
    same_customer_other_session = csrf_of(signed_in(world))
    assert token not in (other_session, same_customer_other_session)
    return {
        "no token": lambda fields: {k: v for k, v in fields.items() if k != "csrf_token"},
        "empty token": lambda fields: fields | {"csrf_token": ""},
        "wrong token": lambda fields: fields | {"csrf_token": "x" * len(token)},
        "a prefix of the token": lambda fields: fields | {"csrf_token": token[:-1]},
        "another customer's token": lambda fields: fields | {"csrf_token": other_session},
        "the same customer's other session's token": lambda fields: (
            fields | {"csrf_token": same_customer_other_session}
        ),
    }


def test_every_state_changing_form_refuses_a_forged_request(world: World, documents: Documents) -> None:
    client = signed_in(world)
    token = csrf_of(client)
    forgeries = forged_submissions(world, token)
    forms = list(post_forms(world, documents, client))
    assert forms
    for page, form in forms:
        before = (unique_parts_dropped(client.get(page).text), snapshot(world, documents))
        for name, forge in forgeries.items():
            response = client.post(form["action"], data=forge(form["fields"]))
            assert response.status_code == 403, (form["action"], name)
            assert "set-cookie" not in response.headers, (form["action"], name)
        assert (unique_parts_dropped(client.get(page).text), snapshot(world, documents)) == before, form["action"]


def unique_parts_dropped(html: str) -> str:
    """A page without what differs on every render by design: the pay form's one-time token."""
    return re.sub(r'name="attempt" value="[^"]*"', 'name="attempt"', html)


def reopen_estimate(world: World, documents: Documents) -> None:
    """Send the estimate again if a form declined it (the company's move)."""
    estimate_id = int(documents.mine["estimate"])
    estimate = run(world.billing.get("estimate", Scope(world.acme.id, 1234), estimate_id))
    if estimate is not None and estimate.status == "declined":
        now = world.clock.now
        run(
            world.billing.write(
                world.acme.id, lambda books: books.update_estimate(estimate_id, {"status": "sent"}), now=now
            )
        )


def test_every_state_changing_form_accepts_its_own_token(world: World, documents: Documents) -> None:
    # The control for the test above: the same forms, submitted as the page made them, work.
    # Each answer to the estimate (decline, approve) is tried on it as it was sent.
    for _, form in list(post_forms(world, documents, signed_in(world))):
        reopen_estimate(world, documents)
        client = signed_in(world)  # a fresh session: the sign-out form ends one
        fields = dict(form["fields"])
        for name, attributes in form.get("required", {}).items():
            options = [option for option in form.get("options", {}).get(name, []) if option]
            if not fields[name] and options:  # what a person would choose in a required list
                fields[name] = options[0]
            elif not fields[name]:  # what a person would type into an empty required field
                email = attributes.get("type") == "email"
                fields[name] = CARD.get(attributes.get("autocomplete") or "") or (
                    "security@example.com" if email else "Security Suite"[: int(attributes.get("maxlength") or 99)]
                )
        fields["csrf_token"] = csrf_of(client)
        response = client.post(form["action"], data=fields)
        assert response.status_code in (200, 303), (form["action"], response.status_code)
