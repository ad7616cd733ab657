"""Authentication, tenancy and id ranges on every operation of the REST API, walked from its operations table.

The API (``/api/v1`` on the dashboard host) is built from one table,
:data:`billportal.api.operations.OPERATIONS`; these tests walk it, so a new
operation is covered the day it lands. Each operation refuses no key, a wrong
key and a revoked key with the very same 401 JSON body; acme's key on any of
globex's object ids (in the path, in a query or in a body) gets the very same
404 (or 422) JSON body as an id that does not exist, and changes nothing of
globex's; ids out of range give 404 or 422 JSON, never a 5xx, on SQLite and on
PostgreSQL (whose document ids are 32-bit). A new path parameter, kind of
object or request body fails ``test_every_api_route_is_an_operation_or_listed``
until the suite learns it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.routing import Route, Router
from starlette.testclient import TestClient

from billportal.api import api_router
from billportal.api.errors import ERROR_CODES
from billportal.api.operations import OPERATIONS, Operation
from billportal.app import build_app
from billportal.core.bounds import MAX_AMOUNT, MAX_ID
from billportal.services import api_keys
from billportal.services.audit import CLI
from billportal.web.context import Context
from billportal.web.errors import ErrorGuard
from tests import factories
from tests.conftest import ACME_KEY, GLOBEX_KEY, World, run
from tests.security.conftest import HS256, Documents, database, good_claims, signed

DASHBOARD = "https://dashboard.localhost"
PREFIX = "/api/v1"
# Routes of the API that are not operations: path -> why they need no key.
API_PUBLIC_ROUTES = {
    "/openapi.json": "the OpenAPI document, public by design",
    "/docs": "the API reference page",
    "/docs.css": "its stylesheet",
}
# An {id} names an object of the kind its first path segment says; {kid} one of the company's SSO keys.
ID_KINDS = {
    "customers": "customer",
    "invoices": "invoice",
    "payments": "payment",
    "credit_notes": "credit_note",
    "estimates": "estimate",
    "webhook_endpoints": "webhook_endpoint",
    "contacts": "contact",
}
API_PARAMETERS = {"id", "kid"}
MISSING = {"id": "999999", "kid": "sso_000000000000"}
LINES = [{"description": "Mallory's widget", "quantity": "1", "unit_price": 100}]
CREATE: dict[str, dict[str, Any]] = {
    "customer": {"name": "Mallory"},
    "invoice": {"customer_id": 1234, "issued_on": "2026-11-01", "lines": LINES},
    "payment": {"customer_id": 1234, "received_on": "2026-11-03", "method": "check", "amount": 100},
    "credit_note": {"customer_id": 1234, "issued_on": "2026-11-04", "lines": LINES},
    "estimate": {"customer_id": 1234, "issued_on": "2026-11-05", "lines": LINES},
}
UPDATE: dict[str, dict[str, Any]] = {
    "customer": {"name": "Mallory"},
    "invoice": {"notes": "Mallory was here"},
    "payment": {"reference": "Mallory was here"},
    "credit_note": {"notes": "Mallory was here"},
    "estimate": {"notes": "Mallory was here"},
}
OTHER_BODIES: dict[str, dict[str, Any]] = {
    "rotateSsoKey": {"grace_period": "none"},
    "createWebhookEndpoint": {"url": "https://mallory.hooks.example/in", "event_types": ["invoice.paid"]},
    "updateWebhookEndpoint": {"description": "Mallory was here"},
    "rotateWebhookSecret": {"overlap": 0},
    "redeliverWebhooks": {"failed_since": 0},
    "createContact": {"name": "Mallory", "email": "mallory@example.com", "role": "manage"},
    "updateContact": {"role": "manage"},
}
# Text only globex's data holds.
GLOBEX_MARKERS = ("OTHERCO", "GLX-0001", "Hank Scorpio", "Homer Simpson", GLOBEX_KEY)
OUT_OF_RANGE = [
    "0",
    "-1",
    str(2**31 - 1),
    str(2**31),
    str(2**32),
    str(2**63 - 1),
    str(2**63),
    "9" * 19,
    "9" * 20,
    "9" * 5000,
    "00000000000000000001",
    "1e3",
    "0x10",
    "1.5",
    "\uff11",
    "\u00b2",
]


def client(world: World, key: str | None = None, *, bearer: bool = False) -> TestClient:
    api = TestClient(build_app(world.settings, world.store, world.clock), base_url=DASHBOARD)
    api.headers["Content-Type"] = "application/json"  # what a backend sends with a body (raw content= too)
    if key is not None and bearer:
        api.headers["Authorization"] = f"Bearer {key}"
    elif key is not None:
        api.auth = (key, "")
    return api


def new_key(world: World, company: str = "acme") -> str:
    owner = world.company(company)
    return run(factories.api_key(world.store, owner, name=f"{company} security suite", now=world.clock.now)).key


def parameters(op: Operation) -> list[str]:
    return re.findall(r"\{(\w+)\}", op.path)


def kind_of(op: Operation) -> str:
    return ID_KINDS[op.path.strip("/").split("/")[0]]


def url(op: Operation, value: str = "") -> str:
    """The operation's address with ``value`` as its path parameter (escaped: the server gets exactly it)."""
    escaped = quote(value, safe="").replace(".", "%2E")
    return PREFIX + re.sub(r"\{\w+\}", escaped, op.path)


def body(op: Operation) -> dict[str, Any] | None:
    """A request body that passes the operation's checks, so that what answers is the id or the key."""
    if op.handler == "create_object":
        return CREATE[kind_of(op)]
    if op.handler == "update_object":
        return UPDATE[kind_of(op)]
    return OTHER_BODIES.get(op.name, {} if op.body is not None else None)


def call(api: TestClient, op: Operation, value: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    payload = body(op)
    response: httpx.Response = api.request(
        op.method,
        url(op, value),
        content=json.dumps(payload) if payload is not None else None,
        headers={"content-type": "application/json", **(headers or {})},
    )
    return response


def assert_json_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.request.url, response.status_code, response.text[:200])
    assert response.headers["content-type"] == "application/json", response.request.url
    error: dict[str, Any] = response.json()["error"]
    assert ERROR_CODES[error["code"]][0] == response.status_code
    return error


# -- the routes are all known -------------------------------------------------------------------------------


def test_every_api_route_is_an_operation_or_listed(world: World) -> None:
    guard = api_router(Context(world.settings, world.store, world.clock))
    assert isinstance(guard, ErrorGuard)
    router = guard.app
    assert isinstance(router, Router)
    paths = {route.path for route in router.routes if isinstance(route, Route)}
    assert len(paths) == len(router.routes), "a route that is not a Route: add it to the suite"
    operations = {op.path.replace("{id}", "{id:int}") for op in OPERATIONS}
    assert paths == operations | set(API_PUBLIC_ROUTES), "every route is an operation, or listed as public"
    for op in OPERATIONS:
        assert set(parameters(op)) <= API_PARAMETERS, f"{op.path}: teach the suite its parameters"
        if "id" in parameters(op) or op.handler in ("create_object", "update_object"):
            assert op.path.strip("/").split("/")[0] in ID_KINDS, f"{op.path}: which kind of object is it?"
        if op.body is not None and op.body.fields:
            assert body(op) is not None, f"{op.name}: teach the suite a body for it"


def test_the_public_routes_need_no_key(world: World) -> None:
    for path in API_PUBLIC_ROUTES:
        assert client(world).get(PREFIX + path).status_code == 200, path


# -- no key, a wrong key, a revoked key: one 401 ------------------------------------------------------------


def refused_keys(world: World) -> dict[str, dict[str, Any]]:
    """Client settings for every way of not having a valid key."""
    key = new_key(world)
    revoked = new_key(world)
    run(api_keys.revoke(world.store, world.acme, revoked[:16], CLI, world.clock.now))
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    return {
        "no key": {},
        "a wrong key": {"key": wrong},
        "a wrong key as bearer": {"key": wrong, "bearer": True},
        "not a key": {"key": "not-a-key"},
        "a revoked key": {"key": revoked},
        "a revoked key as bearer": {"key": revoked, "bearer": True},
        "another scheme": {"headers": {"Authorization": f"Token {key}"}},
        "unreadable basic": {"headers": {"Authorization": "Basic %%%"}},
        "a key as the password": {"headers": {"Authorization": "Basic " + _basic(f":{key}")}},
    }


def _basic(credentials: str) -> str:
    return base64.b64encode(credentials.encode()).decode()


def test_no_wrong_or_revoked_key_gets_the_same_401_on_every_operation(world: World, documents: Documents) -> None:
    answers: list[httpx.Response] = []
    refused = refused_keys(world)
    before = database(world)
    for name, settings in refused.items():
        api = client(world, settings.get("key"), bearer=settings.get("bearer", False))
        for op in OPERATIONS:
            value = acme_value(world, documents, op) if parameters(op) else ""
            response = call(api, op, value, headers=settings.get("headers"))
            assert_json_error(response, 401)
            assert response.headers["www-authenticate"] == 'Bearer realm="billportal API"', (name, op.name)
            answers.append(response)
    assert len({answer.text for answer in answers}) == 1  # nothing tells the cases (or the operations) apart
    assert database(world) == before
    # The control: a good key is let in.
    assert client(world, new_key(world)).get(f"{PREFIX}/customers").status_code == 200


# -- acme's key on globex's ids -----------------------------------------------------------------------------


def globex_values(world: World, documents: Documents, op: Operation) -> list[str]:
    """globex's ids for the operation's path parameter: its objects, or its SSO keys."""
    if "kid" in parameters(op):
        return [key.kid for key in world.company("globex").sso_keys]
    kind = kind_of(op)
    return ["77"] if kind == "customer" else [str(documents.other_company[kind])]  # 77: globex's only


def acme_value(world: World, documents: Documents, op: Operation) -> str:
    """acme's own id for the operation: its retiring key (when it has one), or an object of customer 1234's."""
    if "kid" in parameters(op):
        keys = world.company("acme").sso_keys
        return next((key.kid for key in keys if key.state == "retiring"), keys[0].kid)
    kind = kind_of(op)
    return "1234" if kind == "customer" else str(documents.mine[kind])


def customer_visits(world: World, company: str, customer_id: int, key: str, agent: str) -> None:
    """A customer signs in, and someone fails to: two lines in the company's sign-in log."""
    portal = TestClient(
        build_app(world.settings, world.store, world.clock),
        base_url=f"https://{company}.localhost",
        headers={"user-agent": agent},
        follow_redirects=False,
    )
    assert portal.get(f"/login/{signed(HS256, good_claims(world, sub=customer_id), key)}").status_code == 303
    assert portal.get("/login/not-a-token").status_code == 401


@pytest.fixture
def activity(world: World, documents: Documents) -> None:
    """Both companies have documents, a retiring SSO key and sign-in events; globex's are marked OTHERCO."""
    del documents
    customer_visits(world, "acme", 1234, ACME_KEY, "MINE-AGENT")
    customer_visits(world, "globex", 77, GLOBEX_KEY, "OTHERCO-AGENT")
    for company in ("acme", "globex"):
        api = client(world, new_key(world, company))
        assert api.post(f"{PREFIX}/sso_keys/rotate", json={"grace_period": "1h"}).status_code == 201


def globex_state(world: World) -> dict[str, list[str]]:
    state = database(world, "globex")
    for table in ("customers", "invoices", "payments", "credit_notes", "estimates", "sso_keys", "sign_in_events"):
        assert state[table], f"globex has no {table} to protect: the test would prove nothing"
    return state


@pytest.mark.usefixtures("activity")
def test_globex_ids_in_the_path_are_answered_as_missing_ones(world: World, documents: Documents) -> None:
    api = client(world, new_key(world))
    before = globex_state(world)
    walked = [op for op in OPERATIONS if parameters(op)]
    assert walked
    for op in walked:
        missing = call(api, op, MISSING[parameters(op)[0]])
        assert_json_error(missing, 404)
        for value in globex_values(world, documents, op):
            theirs = call(api, op, value)
            assert_json_error(theirs, 404)
            assert theirs.text == missing.text, (op.name, value)  # just as if it did not exist
    assert globex_state(world) == before
    # The control, last (it voids and deletes, deletes last): acme's own ids are found.
    for op in sorted(walked, key=lambda op: op.method == "DELETE"):
        response = call(api, op, acme_value(world, documents, op))
        assert response.status_code < 500, (op.name, response.status_code)
        assert response.status_code != 404, (op.name, response.text)
    assert globex_state(world) == before


@pytest.mark.usefixtures("activity")
def test_lists_never_show_globex_data_whatever_the_filters(world: World) -> None:
    api = client(world, new_key(world))
    listed = [op for op in OPERATIONS if op.method == "GET" and not parameters(op) and op.answer.name.endswith("List")]
    assert listed
    # The one object that is not a list, the company's settings, is acme's.
    assert api.get("/api/v1/company").json()["username"] == "acme"
    for op in listed:
        filters = {param.name for param in op.params if param.where == "query"}
        own = api.get(url(op), params={"limit": "100"})
        assert own.status_code == 200, op.name
        assert own.json()["data"], f"{op.name}: the control: acme has data to list"
        for wanted in ({}, {"customer_id": "77"}, {"customer_id": "1234"}, {"cursor": "0"}, {"updated_after": "0"}):
            query = {name: value for name, value in wanted.items() if name in filters}
            response = api.get(url(op), params={"limit": "100", **query})
            assert response.status_code == 200, (op.name, query)
            for marker in GLOBEX_MARKERS:
                assert marker not in response.text, (op.name, query, marker)
            for key in world.company("globex").sso_keys:
                assert key.kid not in response.text, (op.name, query)
        if "customer_id" in filters:
            assert api.get(url(op), params={"customer_id": "77"}).json()["data"] == [], op.name


@pytest.mark.usefixtures("activity")
def test_globex_ids_in_a_body_are_answered_as_missing_ones(world: World, documents: Documents) -> None:
    api = client(world, new_key(world))
    before = globex_state(world)
    globex_invoice = documents.other_company["invoice"]
    cases = [
        ("invoices", {**CREATE["invoice"], "customer_id": "CUSTOMER"}, {"CUSTOMER": ("77", "999999")}),
        ("estimates", {**CREATE["estimate"], "customer_id": "CUSTOMER"}, {"CUSTOMER": ("77", "999999")}),
        (
            "payments",
            {**CREATE["payment"], "applications": [{"invoice_id": "INVOICE", "amount": 100}]},
            {"INVOICE": (str(globex_invoice), "999999")},
        ),
        # globex's invoice is for its customer 1234, and acme has a customer 1234 too.
        (
            "credit_notes",
            {**CREATE["credit_note"], "invoice_id": "INVOICE"},
            {"INVOICE": (str(globex_invoice), "999999")},
        ),
    ]
    for path, template, holes in cases:
        (placeholder, (theirs_id, missing_id)), *_ = holes.items()
        raw = json.dumps(template)
        theirs = api.post(f"{PREFIX}/{path}", content=raw.replace(f'"{placeholder}"', theirs_id))
        missing = api.post(f"{PREFIX}/{path}", content=raw.replace(f'"{placeholder}"', missing_id))
        assert_json_error(missing, 422)
        assert_json_error(theirs, 422)
        assert theirs.text == missing.text, (path, theirs.text, missing.text)
    assert globex_state(world) == before


# -- ids out of range: 404 or 422, never 5xx ----------------------------------------------------------------


@pytest.mark.usefixtures("documents")
def test_out_of_range_ids_in_the_path_are_404_or_422(world: World) -> None:
    api = client(world, new_key(world))
    hostile = [*OUT_OF_RANGE, "..", "x" * 65, "sso_" + "0" * 4000, "\x00", "%00", "a/b"]
    for op in OPERATIONS:
        if not parameters(op):
            continue
        for value in hostile if "kid" in parameters(op) else OUT_OF_RANGE:
            assert_json_error(call(api, op, value), 404, 422)


def numbers() -> Iterator[str]:
    """Out-of-range numbers as they can be written in JSON."""
    yield from ("0", "-1", str(2**31), str(2**32), str(2**63 - 1), str(2**63), str(2**64), "9" * 5000)
    yield from ("1e3", "1.5", "-0", "1E400", "1e19")


def test_out_of_range_ids_in_a_body_or_query_are_4xx(world: World, documents: Documents) -> None:
    api = client(world, new_key(world))
    invoice = documents.mine["invoice"]
    templates = {
        "invoices": json.dumps({**CREATE["invoice"], "customer_id": "NUMBER"}),
        "payments": json.dumps({**CREATE["payment"], "applications": [{"invoice_id": "NUMBER", "amount": 1}]}),
        "credit_notes": json.dumps({**CREATE["credit_note"], "invoice_id": "NUMBER"}),
        "estimates": json.dumps({**CREATE["estimate"], "customer_id": "NUMBER"}),
    }
    assert api.get(f"{PREFIX}/customers").status_code == 200  # (the key's first use is recorded)
    before = database(world)
    # Customers' ids are 64-bit (and 1e3 is the integer 1000, as JSON Schema has it).
    for number in ("0", "-1", str(2**63), str(2**64), "9" * 5000, "1.5", "1E400", "1e19"):
        response = api.post(f"{PREFIX}/customers", content=f'{{"id": {number}, "name": "Mallory"}}')
        assert_json_error(response, 400)
    for path, template in templates.items():
        for number in numbers():
            raw = template.replace('"NUMBER"', number).replace("NUMBER", number)
            response = api.post(f"{PREFIX}/{path}", content=raw)
            assert_json_error(response, 400, 404, 409, 422)
    assert database(world) == before
    for op in OPERATIONS:
        if op.method != "GET" or parameters(op):
            continue
        for param in op.params:
            if param.where != "query":
                continue
            for value in [*numbers(), *OUT_OF_RANGE, "\x00", "success\x00"]:  # (PostgreSQL refuses a NUL)
                response = api.get(url(op), params={param.name: value})
                assert response.status_code < 500, (op.name, param.name, value[:20])
                assert response.headers["content-type"] == "application/json"
                if response.status_code != 200:
                    assert_json_error(response, 400, 404, 422)
    # The control: the well-formed version of the same request works.
    assert api.get(f"{PREFIX}/invoices/{invoice}").status_code == 200


def test_a_create_without_an_id_or_number_after_the_largest_is_refused_not_a_500(world: World) -> None:
    # The next automatic customer id after 2^63 - 1 is past every column; the review got a 500.
    api = client(world, new_key(world))
    assert api.post(f"{PREFIX}/customers", json={"id": MAX_ID, "name": "Max"}).status_code == 201
    for _ in range(2):
        assert_json_error(api.post(f"{PREFIX}/customers", json={"name": "Next"}), 409, 422)
    assert api.get(f"{PREFIX}/customers/{MAX_ID}").json()["name"] == "Max"
    # Documents numbered by hand up to the largest number a counter can follow, then one without.
    for kind, path in (("invoice", "invoices"), ("payment", "payments"), ("credit_note", "credit_notes")):
        for number in (f"N-{MAX_ID}", "9" * 40, f"N-{'9' * 19}"):
            made = api.post(f"{PREFIX}/{path}", json={**CREATE[kind], "number": number})
            assert made.status_code < 500, (kind, number, made.text)
            after = api.post(f"{PREFIX}/{path}", json=CREATE[kind])
            assert after.status_code < 500, (kind, number, after.text)


def test_document_totals_are_bounded_like_amounts(world: World) -> None:
    # 100 lines of the largest amount made invoices of 10^14, past MAX_AMOUNT (issue 12.12).
    api = client(world, new_key(world))
    assert api.get(f"{PREFIX}/customers").status_code == 200  # (the key's first use is recorded)
    before = database(world)
    largest = {"description": "x", "quantity": "1", "unit_price": MAX_AMOUNT}
    taxed = {"description": "x", "quantity": "1", "unit_price": MAX_AMOUNT, "tax": 1}
    for kind, path in (("invoice", "invoices"), ("credit_note", "credit_notes"), ("estimate", "estimates")):
        for lines in ([largest] * 100, [largest, {**largest, "unit_price": 1}], [taxed]):
            error = assert_json_error(api.post(f"{PREFIX}/{path}", json={**CREATE[kind], "lines": lines}), 422)
            assert error["code"] == "amount_too_large", (kind, error)
    assert database(world) == before
    made = api.post(f"{PREFIX}/invoices", json={**CREATE["invoice"], "lines": [largest]})  # the bound itself
    assert made.status_code == 201
    assert made.json()["total"] == MAX_AMOUNT
