"""CSRF on the REST API (issue 12.1): a web page cannot make a browser act with an API key.

The review's attack: a 401 carried ``WWW-Authenticate: Basic``, so a browser asked
for the key and cached it; the API read any body as JSON; a cross-site page then
auto-submitted a ``text/plain`` form whose body was JSON, and an invoice was
made. Now the challenge is ``Bearer`` (browsers never prompt for it), a body must
be ``application/json`` (no form can send that type), every POST and PATCH sends
a JSON object (``{}`` at least, so void, revoke and rotate cannot be triggered by
an empty or form body), and a POST, PATCH or DELETE whose ``Origin`` is not the
API's own (built from the settings) or whose ``Sec-Fetch-Site`` is ``cross-site``
is refused. Each case drives the real app over HTTP and compares the whole
database before and after.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from starlette.testclient import TestClient

from billportal.api.operations import OPERATIONS, Operation
from billportal.api.views import Api
from billportal.app import build_app
from billportal.web.context import Context
from billportal.web.guards import declared
from tests.conftest import World
from tests.security.conftest import Documents, database
from tests.security.test_api_routes import CREATE, acme_value, assert_json_error, body, new_key, parameters, url

DASHBOARD = "https://dashboard.localhost"
OWN_ORIGIN = DASHBOARD
INVOICE = json.dumps(CREATE["invoice"])
UNSAFE = [op for op in OPERATIONS if op.method != "GET"]
# What a cross-site page can make a browser send: an Origin of its own, or none at all but Sec-Fetch-Site.
CROSS_SITE = {
    "another site's origin": {"origin": "https://evil.example"},
    "a company portal's origin": {"origin": "https://acme.localhost"},
    "the dashboard over http": {"origin": "http://dashboard.localhost"},
    "the dashboard on another port": {"origin": "https://dashboard.localhost:8443"},
    "an opaque origin": {"origin": "null"},
    "a Host-header trick": {"origin": "https://dashboard.localhost:@evil.example"},
    "sec-fetch-site alone": {"sec-fetch-site": "cross-site"},
    "own origin but cross-site fetch": {"origin": OWN_ORIGIN, "sec-fetch-site": "cross-site"},
}
# Bodies no backend sends, each with the type a form (or a careless client) gives it.
NOT_JSON = {
    "text/plain (a form's enctype)": ("text/plain", INVOICE + "="),
    "text/plain, JSON inside": ("text/plain;charset=UTF-8", INVOICE),
    "a url-encoded form": ("application/x-www-form-urlencoded", "customer_id=1234&issued_on=2026-11-01"),
    "multipart": (
        "multipart/form-data; boundary=x",
        '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n{}\r\n--x--',
    ),
    "no type at all": (None, INVOICE),
    "json-ish type": ("application/json-patch+json", INVOICE),
    "text/json": ("text/json", INVOICE),
}


def client(world: World, key: str) -> TestClient:
    api = TestClient(build_app(world.settings, world.store, world.clock), base_url=DASHBOARD)
    api.auth = (key, "")
    return api


def send(api: TestClient, op: Operation, value: str, headers: dict[str, str], content: str | None) -> httpx.Response:
    response: httpx.Response = api.request(op.method, url(op, value), content=content, headers=headers)
    return response


def json_body(op: Operation) -> str | None:
    payload = body(op)
    return json.dumps(payload) if payload is not None else None


def test_the_401_carries_no_challenge_a_browser_prompts_for(world: World) -> None:
    anonymous = TestClient(build_app(world.settings, world.store, world.clock), base_url=DASHBOARD)
    for op in OPERATIONS:
        answer = anonymous.request(op.method, url(op, "1"), headers={"content-type": "application/json"})
        assert answer.status_code == 401
        challenge = answer.headers["www-authenticate"]
        assert challenge == 'Bearer realm="billportal API"'
        assert "basic" not in challenge.lower()


def test_basic_credentials_that_are_sent_still_work(world: World) -> None:
    key = new_key(world)
    basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    api = TestClient(build_app(world.settings, world.store, world.clock), base_url=DASHBOARD)
    assert api.get("/api/v1/customers", headers={"authorization": basic}).status_code == 200
    made = api.post(
        "/api/v1/invoices", content=INVOICE, headers={"authorization": basic, "content-type": "application/json"}
    )
    assert made.status_code == 201


@pytest.mark.parametrize("case", sorted(NOT_JSON))
def test_a_body_that_is_not_json_is_refused_415_and_changes_nothing(
    world: World, documents: Documents, case: str
) -> None:
    api = client(world, new_key(world))
    api.get("/api/v1/customers")  # the key's first use is written now, not during the comparison
    content_type, content = NOT_JSON[case]
    headers = {"content-type": content_type} if content_type else {}
    before = database(world)
    for op in UNSAFE:  # a DELETE with a body of another type too
        answer = send(api, op, acme_value(world, documents, op) if parameters(op) else "", headers, content)
        error = assert_json_error(answer, 415)
        assert error["code"] == "unsupported_media_type", op.name
    assert database(world) == before


@pytest.mark.parametrize("case", sorted(CROSS_SITE))
def test_a_cross_site_post_patch_or_delete_is_refused_and_changes_nothing(
    world: World, documents: Documents, case: str
) -> None:
    api = client(world, new_key(world))
    api.get("/api/v1/customers")
    before = database(world)
    for op in UNSAFE:
        headers = {"content-type": "application/json", **CROSS_SITE[case]}
        value = acme_value(world, documents, op) if parameters(op) else ""
        answer = send(api, op, value, headers, json_body(op))
        error = assert_json_error(answer, 403)
        assert error["code"] == "cross_site_request", op.name
    assert database(world) == before


def test_reading_is_not_refused_for_its_origin(world: World) -> None:
    """A GET changes nothing, and a cross-site page cannot read the answer (no CORS): it is let through."""
    api = client(world, new_key(world))
    assert api.get("/api/v1/customers", headers={"origin": "https://evil.example"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"origin": OWN_ORIGIN},
        {"origin": OWN_ORIGIN, "sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},
    ],
    ids=["a backend (no browser headers)", "own origin", "own origin, same-origin fetch", "typed in the address bar"],
)
def test_a_backend_or_the_apis_own_origin_is_let_through(world: World, headers: dict[str, str]) -> None:
    """The control: what the refusals above refuse is only the cross-site part."""
    api = client(world, new_key(world))
    made = api.post("/api/v1/invoices", content=INVOICE, headers={"content-type": "application/json", **headers})
    assert made.status_code == 201, made.text
    one = made.json()["id"]
    assert api.post(f"/api/v1/invoices/{one}/void", json={}, headers=headers).status_code == 200
    charset = {"content-type": "application/json; charset=utf-8", **headers}
    assert api.patch("/api/v1/customers/1234", content='{"name": "W. E. C."}', headers=charset).status_code == 200


def test_the_own_origin_is_the_public_urls_whatever_the_host_header(world: World) -> None:
    api = client(world, new_key(world))
    headers = {"content-type": "application/json", "host": "dashboard.localhost:8443"}
    good = api.post("/api/v1/invoices", content=INVOICE, headers={**headers, "origin": "https://dashboard.localhost"})
    assert good.status_code == 201
    ported = {**headers, "origin": "https://dashboard.localhost:8443"}  # not the configured public URL
    assert api.post("/api/v1/invoices", content=INVOICE, headers=ported).status_code == 403
    spoofed = {**headers, "host": "evil.example", "origin": "https://evil.example"}
    assert api.post("/api/v1/invoices", content=INVOICE, headers=spoofed).status_code in (403, 404)


ACTIONS = ["voidInvoice", "voidCreditNote", "voidEstimate", "rotateSsoKey", "revokeSsoKey", "createSignInLink"]


@pytest.mark.parametrize("name", ACTIONS)
def test_an_action_needs_a_json_object_body(world: World, documents: Documents, name: str) -> None:
    """Void, rotate, revoke and sign-in links used to act on an empty or form body."""
    op = next(op for op in OPERATIONS if op.name == name)
    api = client(world, new_key(world))
    api.get("/api/v1/customers")
    value = acme_value(world, documents, op) if parameters(op) else ""
    before = database(world)
    for content in (None, "", " ", "null", "[]", '"x"', "grace_period=none"):
        answer = send(api, op, value, {"content-type": "application/json"}, content)
        assert_json_error(answer, 400)
    assert database(world) == before
    # The control: {} (or the documented body) acts.
    payload = json.dumps(body(op) or {})
    assert send(api, op, value, {"content-type": "application/json"}, payload).status_code in (200, 201, 409)


def test_every_operation_declares_the_guard(world: World) -> None:
    api = Api(Context(world.settings, world.store, world.clock))
    for op in OPERATIONS:
        guard = declared(getattr(api, op.handler))
        assert guard is not None, op.name
        assert (guard.session, guard.same_origin, guard.json_body) == ("api_key", True, True), op.name
        if op.method in ("POST", "PATCH"):
            assert op.body is not None, f"{op.name}: every POST and PATCH takes a JSON object"
