"""``/login``: the seed product's links sign customers in; every broken link is refused alike."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from billportal.services import sso
from billportal.services.audit import CLI
from billportal.services.billing import Billing
from billportal.sso.pages import SEED_PAGE_IDS
from billportal.storage.documents import Scope
from billportal.storage.records import SignInEvent
from billportal.storage.store import Store
from tests import factories
from tests.conftest import ACME_KEY, GLOBEX_KEY, Clock, World, run

SEED_TOKEN_STRING_SUB = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaXNzIjoiUnVieSBCYWNrZW5kIiwiZXhwIjoxNDU1NTY0OTQ4fQ"
    ".LXu-zcMTF8ikMSRrSVYnP0szyRZuqQOAorHAsDrfwPs"
)
SEED_TOKEN_INT_SUB = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOjEyMzQsImlzcyI6IlJ1YnkgQmFja2VuZCIsImV4cCI6MTQ1NTY1MjIxMH0"
    ".7kClQ2UAVEZ7xYus7ZHGRePnzDG5mBrcgIo6rZuo-Dw"
)
COOKIE = "__Host-bp_session"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: Any, payload: Any, key: str = ACME_KEY) -> str:
    """A token from raw JSON text, signed correctly: for the shape and claim rules."""
    import hashlib
    import hmac

    head = b64(header if isinstance(header, bytes) else json.dumps(header).encode())
    body = b64(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    signature = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def events(store: Store, company_id: int) -> list[SignInEvent]:
    return run(store.sign_in_events(company_id))


@pytest.fixture
def failure_body(world: World) -> str:
    response = world.client().get("/login/not-a-token")
    assert response.status_code == 401
    return str(response.text)


# -- the seed product's own samples -------------------------------------------------


@pytest.mark.parametrize(
    ("token", "key", "customer_id"),
    [
        (SEED_TOKEN_STRING_SUB, "secret", 1234567890),
        (SEED_TOKEN_INT_SUB, "{sso_key_from_dashboard}", 1234),
    ],
)
def test_seed_samples_verify_before_their_exp_and_expire_after(
    store: Store, settings: Any, token: str, key: str, customer_id: int
) -> None:
    clock = Clock()
    company_id = run(factories.company(store, "seedco", key, name="Seed Co", weak=True, now=clock.now)).id
    run(factories.customer(store, company_id, id=customer_id, name="Sample", now=clock.now))
    seedco = run(store.company("seedco"))
    assert seedco is not None
    world = World(store, clock, settings, seedco, seedco)
    exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]

    clock.now = exp - 120
    signed_in = world.client("seedco").get(f"/login/{token}")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/"
    assert COOKIE in signed_in.cookies

    clock.now = int(time.time())
    expired = world.client("seedco").get(f"/login/{token}")
    assert expired.status_code == 401
    assert COOKIE not in expired.cookies
    assert events(store, company_id)[0].reason == "expired"


def test_ruby_example_token_signs_in_and_lands_on_my_account(world: World) -> None:
    # Exactly as the seed's Ruby example: integer sub, iss, exp one day ahead.
    token = jwt.encode(
        {"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now + 86400}, ACME_KEY, algorithm="HS256"
    )
    client = world.client()
    response = client.get(f"/login/{token}")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert token not in response.headers["location"]

    page = client.get("/")
    assert page.status_code == 200
    assert "Wile E. Coyote" in page.text
    assert "INV-0001" in page.text
    assert "INV-0002" in page.text
    assert "INV-0003" not in page.text  # Road Runner's
    assert "GLX-0001" not in page.text  # another company's


def test_string_sub_as_in_the_seed_header_sample(world: World) -> None:
    token = world.token({"sub": "1234567890", "iss": "Ruby Backend", "exp": world.clock.now + 60})
    client = world.client()
    assert client.get(f"/login/{token}").status_code == 303
    assert "Seed Sample" in client.get("/").text


def test_cookie_flags(world: World) -> None:
    response = world.client().get(f"/login/{world.token()}")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("Path=/", "HttpOnly", "SameSite=Lax", "Secure"):
        assert flag in cookie
    assert "domain" not in cookie.lower()


def test_post_login_with_a_token_field(world: World) -> None:
    client = world.client()
    response = client.post("/login", data={"token": world.token(), "redirect_to": "invoices"})
    assert response.status_code == 303
    assert response.headers["location"] == "/invoices"
    assert "Invoices" in client.get("/invoices").text


def test_post_login_without_token_is_refused(world: World, failure_body: str) -> None:
    response = world.client().post("/login", data={})
    assert response.status_code == 401
    assert response.text == failure_body


# -- redirect_to ----------------------------------------------------------------------


@pytest.mark.parametrize("page_id", SEED_PAGE_IDS)
def test_every_seed_page_id_lands_on_a_page(world: World, page_id: str) -> None:
    client = world.client()
    response = client.get(f"/login/{world.token()}", params={"redirect_to": page_id})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    assert client.get(location).status_code == 200


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example", "/\\evil", "http:evil.example", "javascript:alert(1)", ""]
)
def test_redirect_to_never_follows_a_url(world: World, target: str) -> None:
    response = world.client().get(f"/login/{world.token()}", params={"redirect_to": target})
    assert response.status_code == 303
    assert response.headers["location"] == "/"


# -- every rejection rule: 401, no cookie, the same page ---------------------------------

NOW_PLACEHOLDER = 0


def _rejections(now: int) -> list[tuple[str, str, str]]:
    good = {"sub": 1234, "iss": "Ruby Backend", "exp": now + 600}
    hs = {"alg": "HS256", "typ": "JWT"}
    valid = raw_token(hs, good)
    head, body, sig = valid.split(".")
    return [
        ("too long", "x" * 5000, "token_too_long"),
        ("two segments", f"{head}.{body}", "token_malformed"),
        ("four segments", f"{valid}.x", "token_malformed"),
        ("padding", f"{head}.{body}=.{sig}", "token_malformed"),
        ("plus and slash", f"{head}.{body}.{sig.replace('-', '+').replace('_', '/')}+/", "token_malformed"),
        ("header not json", raw_token(b"not json", good), "header_invalid"),
        ("header an array", raw_token([1, 2], good), "header_invalid"),
        ("header duplicate names", raw_token(b'{"alg":"HS256","alg":"HS256"}', good), "header_invalid"),
        (
            "payload duplicate names",
            raw_token(hs, b'{"sub":1234,"sub":1235,"exp":%d}' % (now + 600)),
            "payload_invalid",
        ),
        ("payload not utf-8", raw_token(hs, b'{"sub":"\xff"}'), "payload_invalid"),
        ("alg none", raw_token({"alg": "none"}, good), "alg_not_allowed"),
        ("alg HS512", raw_token({"alg": "HS512"}, good), "alg_not_allowed"),
        ("alg RS256", raw_token({"alg": "RS256"}, good), "alg_not_allowed"),
        ("typ", raw_token({"alg": "HS256", "typ": "JWE"}, good), "typ_invalid"),
        ("crit", raw_token({"alg": "HS256", "crit": ["exp"]}, good), "crit_not_supported"),
        ("jku", raw_token({"alg": "HS256", "jku": "https://evil.example/k"}, good), "header_key_parameter"),
        ("kid unknown", raw_token({"alg": "HS256", "kid": "nope"}, good), "kid_unknown"),
        ("wrong key", raw_token(hs, good, key=GLOBEX_KEY), "signature_invalid"),
        ("exp missing", raw_token(hs, {"sub": 1234}), "exp_missing"),
        ("exp string", raw_token(hs, {"sub": 1234, "exp": str(now + 600)}), "exp_invalid"),
        ("exp float", raw_token(hs, {"sub": 1234, "exp": now + 600.5}), "exp_invalid"),
        ("expired", raw_token(hs, {"sub": 1234, "exp": now - 61}), "expired"),
        ("nbf future", raw_token(hs, {"sub": 1234, "exp": now + 600, "nbf": now + 300}), "not_yet_valid"),
        ("iat future", raw_token(hs, {"sub": 1234, "exp": now + 600, "iat": now + 300}), "iat_in_future"),
        ("sub missing", raw_token(hs, {"exp": now + 600}), "sub_missing"),
        ("sub leading zero", raw_token(hs, {"sub": "01234", "exp": now + 600}), "sub_invalid"),
        ("sub negative", raw_token(hs, {"sub": -1234, "exp": now + 600}), "sub_invalid"),
        ("sub float", raw_token(hs, {"sub": 1234.0, "exp": now + 600}), "sub_invalid"),
        ("customer unknown", raw_token(hs, {"sub": 999, "exp": now + 600}), "customer_unknown"),
        ("jti not a string", raw_token(hs, {"sub": 1234, "exp": now + 600, "jti": 7}), "jti_invalid"),
    ]


@pytest.mark.parametrize("case", range(len(_rejections(0))), ids=[c[0] for c in _rejections(0)])
def test_each_rejection_rule(world: World, failure_body: str, case: int) -> None:
    _, token, reason = _rejections(world.clock.now)[case]
    response = world.client().get(f"/login/{token}")
    assert response.status_code == 401
    assert response.text == failure_body
    assert COOKIE not in response.cookies
    assert "set-cookie" not in response.headers
    assert events(world.store, world.acme.id)[0].reason == reason


def test_leeway_accepts_a_link_just_expired(world: World) -> None:
    token = world.token({"sub": 1234, "exp": world.clock.now - 30})
    assert world.client().get(f"/login/{token}").status_code == 303


def test_link_signed_by_another_company_is_refused_even_if_the_customer_exists(world: World) -> None:
    # Customer 1234 exists in both companies; Globex's key must not open Acme's portal.
    token = world.token(key=GLOBEX_KEY)
    assert world.client("globex").get(f"/login/{token}").status_code == 303
    response = world.client("acme").get(f"/login/{token}")
    assert response.status_code == 401
    assert events(world.store, world.acme.id)[0].reason == "signature_invalid"


def test_single_use_link_works_once(world: World) -> None:
    token = world.token({"sub": 1234, "exp": world.clock.now + 60, "jti": "link-1"})
    assert world.client().get(f"/login/{token}").status_code == 303
    again = world.client().get(f"/login/{token}")
    assert again.status_code == 401
    assert events(world.store, world.acme.id)[0].reason == "jti_replayed"


def test_single_use_mark_is_per_company(world: World) -> None:
    acme = world.token({"sub": 1234, "exp": world.clock.now + 60, "jti": "same"})
    globex = world.token({"sub": 1234, "exp": world.clock.now + 60, "jti": "same"}, key=GLOBEX_KEY)
    assert world.client("acme").get(f"/login/{acme}").status_code == 303
    assert world.client("globex").get(f"/login/{globex}").status_code == 303


def test_success_and_failure_are_logged_with_details(world: World) -> None:
    client = world.client(headers={"user-agent": "pytest-agent"})
    client.get(f"/login/{world.token()}")
    client.get("/login/garbage")
    failure, success = events(world.store, world.acme.id)[:2]
    assert (success.result, success.reason, success.customer_id, success.issuer) == (
        "success",
        "ok",
        1234,
        "Ruby Backend",
    )
    assert success.kid is not None
    assert success.user_agent == "pytest-agent"
    assert (failure.result, failure.reason) == ("failure", "token_malformed")


# -- company routing -----------------------------------------------------------------------


def test_unknown_company_is_a_404_page(world: World) -> None:
    response = world.client("nosuchco").get(f"/login/{world.token()}")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]


def test_unknown_host_is_a_404_page(world: World) -> None:
    response = world.client().get("/", headers={"host": "evil.example"})
    assert response.status_code == 404


def test_company_host_is_case_insensitive_and_may_carry_a_port(world: World) -> None:
    response = world.client().get(f"/login/{world.token()}", headers={"host": "ACME.localhost:8000"})
    assert response.status_code == 303


# -- sessions ---------------------------------------------------------------------------


def test_signing_in_again_discards_the_old_session(world: World) -> None:
    client = world.client()
    client.get(f"/login/{world.token()}")
    old = client.cookies[COOKIE]
    client.get(f"/login/{world.token({'sub': 1235, 'exp': world.clock.now + 60})}")
    assert client.cookies[COOKIE] != old
    stale = world.client(cookies={COOKIE: old})
    assert stale.get("/").status_code == 401


def test_a_session_cookie_for_one_company_does_not_open_another(world: World) -> None:
    client = world.client()
    client.get(f"/login/{world.token()}")
    other = world.client("globex", cookies={COOKIE: client.cookies[COOKIE]})
    assert other.get("/").status_code == 401


def test_sessions_end_when_idle_and_at_their_absolute_limit(world: World) -> None:
    client = world.client()
    client.get(f"/login/{world.token()}")
    world.clock.advance(world.settings.session_idle_seconds - 10)
    assert client.get("/").status_code == 200  # activity renews the idle timer
    world.clock.advance(world.settings.session_idle_seconds - 10)
    assert client.get("/").status_code == 200
    world.clock.advance(world.settings.session_idle_seconds + 1)
    assert client.get("/").status_code == 401


def test_sign_out_ends_the_session_on_the_server(world: World) -> None:
    client = world.client()
    client.get(f"/login/{world.token()}")
    cookie = client.cookies[COOKIE]
    page = client.get("/")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/signed-out"
    replay = world.client(cookies={COOKIE: cookie})
    assert replay.get("/").status_code == 401


def test_sign_out_needs_the_csrf_token(world: World) -> None:
    client = world.client()
    client.get(f"/login/{world.token()}")
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/").status_code == 200


def test_invoice_detail_is_scoped_to_the_customer(world: World) -> None:
    client = world.client()
    client.get(f"/login/{world.token()}")
    billing = Billing(world.store)
    mine, _ = run(billing.invoices(Scope(world.acme.id, 1234)))
    theirs, _ = run(billing.invoices(Scope(world.acme.id, 1235)))
    other_company, _ = run(billing.invoices(Scope(world.globex.id, 1234)))
    page = client.get(f"/invoices/{mine[0].id}")
    assert page.status_code == 200
    assert "Rocket skates" in page.text
    missing = client.get("/invoices/999999")
    for invoice in (theirs[0], other_company[0]):
        response = client.get(f"/invoices/{invoice.id}")
        assert response.status_code == 404
        assert response.text == missing.text


def test_a_link_signed_with_a_revoked_key_is_logged_with_that_key(world: World) -> None:
    old_kid = world.acme.sso_keys[0].kid
    run(sso.rotate(world.store, world.acme, "none", CLI, world.clock.now))
    world.store.forget_company("acme")
    response = world.client().get(f"/login/{world.token()}")  # signed with the old key, no kid in the header
    assert response.status_code == 401
    event = events(world.store, world.acme.id)[0]
    assert (event.reason, event.kid) == ("key_revoked", old_kid)
