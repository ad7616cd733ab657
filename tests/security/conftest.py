"""What the security suite shares: hand-made tokens, the refusal check, and the hypothesis profiles.

Every case drives the real app over HTTP (Starlette's TestClient on the ASGI app,
or a real ``billportal serve`` for what only a server process shows) on a real
database. A refused sign-in is always the same answer: 401, the one failure
page, no cookie and no session row; the reason is only in the sign-in log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Connection, func, select
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from billportal.app import build_app, portal_router
from billportal.portal.session_handles import handle_of
from billportal.services.billing import LineInput
from billportal.services.gateways import CardEntry
from billportal.services.payments import Payments, PayPlan
from billportal.storage import email_sign_ins
from billportal.storage import schema as t
from billportal.storage.records import Session
from billportal.storage.store import Store
from billportal.web.context import Context
from tests import factories
from tests.conftest import ACME_KEY, GLOBEX_KEY, World, run
from tests.functional.test_signin import COOKIE, b64

# `make test` runs each property a fixed, modest number of times; `make fuzz`
# (BILLPORTAL_FUZZ_PROFILE=fuzz) runs them long and with fresh randomness.
settings.register_profile(
    "default",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("BILLPORTAL_FUZZ_PROFILE", "default"))

HS256 = {"alg": "HS256", "typ": "JWT"}


def segment(value: Any) -> str:
    """A base64url segment of raw bytes, or of a value as compact JSON."""
    return b64(value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode())


def signed(header: Any, payload: Any, key: str | bytes = ACME_KEY) -> str:
    """A token with a correct HS256 signature over whatever header and payload it is given."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{signature(signing_input, key)}"


def signature(signing_input: str, key: str | bytes = ACME_KEY) -> str:
    secret = key.encode() if isinstance(key, str) else key
    return b64(hmac.new(secret, signing_input.encode("latin-1"), hashlib.sha256).digest())


def login_path(token: str) -> str:
    """``/login/{token}``, escaped so that the server receives exactly ``token``."""
    path = quote(token, safe="", errors="surrogatepass")
    if set(token) <= {"."}:
        path = path.replace(".", "%2E")  # or the client would resolve "." and ".." away
    return "/login/" + path


def good_claims(world: World, **changes: Any) -> dict[str, Any]:
    """The Ruby example's claims for acme's customer 1234, valid for ten minutes."""
    claims: dict[str, Any] = {"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now + 600}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not ...}


def session_count(store: Store) -> int:
    """Session rows in the database, whichever backend holds them."""
    count: int = run(
        store.backend.read(lambda conn: conn.execute(select(func.count()).select_from(t.sessions)).scalar_one())
    )
    return count


def database(world: World, company: str | None = None, admin_id: int | None = None) -> dict[str, list[str]]:
    """Every row of every table, or only one company's rows (and one admin's), to compare before and after."""
    company_id = world.company(company).id if company else None

    def read(conn: Connection) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for table in t.metadata.sorted_tables:
            query = select(table)
            if company_id is not None:
                if table.name == "admins":
                    query = query.where(table.c.id == admin_id)
                elif table.name == "companies":
                    query = query.where(table.c.id == company_id)
                elif "company_id" in table.c:
                    query = query.where(table.c.company_id == company_id)
                else:
                    continue
            found[table.name] = sorted(repr(tuple(row)) for row in conn.execute(query))
        return found

    rows: dict[str, list[str]] = run(world.store.backend.read(read))
    return rows


def last_reason(world: World, company: str = "acme") -> str:
    company_id = world.acme.id if company == "acme" else world.globex.id
    return run(world.store.sign_in_events(company_id, limit=1))[0].reason


@pytest.fixture
def failure_page(world: World) -> str:
    """The one page every refused sign-in gets."""
    response = world.client().get("/login/not-a-token")
    assert response.status_code == 401
    return str(response.text)


def assert_refused(world: World, response: Any, failure_page: str, reason: str | None = None) -> None:
    """A refused sign-in: 401, the same page as any other refusal, no cookie, no session, the reason logged."""
    assert response.status_code == 401
    assert response.text == failure_page
    assert "set-cookie" not in response.headers
    assert COOKIE not in response.cookies
    assert session_count(world.store) == 0
    if reason is not None:
        assert last_reason(world) == reason


def shared_app_clients(world: World, **setting_changes: Any) -> Any:
    """A factory of TestClients that all talk to one app (one rate limiter), from any address."""
    app = build_app(replace(world.settings, **setting_changes), world.store, world.clock)

    def client(address: str = "203.0.113.10", company: str = "acme", **kwargs: Any) -> TestClient:
        return TestClient(
            app, base_url=f"https://{company}.localhost", follow_redirects=False, client=(address, 40000), **kwargs
        )

    return client


# -- the portal's routes, and documents of every kind to reach them with ---------------------------

# (method, path) -> why it needs no session.
PUBLIC_ROUTES = {
    ("GET", "/login/{token:token}"): "signs in with a link (test_tokens.py)",
    ("POST", "/login"): "signs in with a link by form (test_tokens.py)",
    ("GET", "/login"): "the email sign-in form (test_email_sign_in.py)",
    ("POST", "/login/email"): "asks for a sign-in link by email: one answer for every address",
    ("POST", "/login/email/confirm"): "the emailed link's button: signs in once (test_email_sign_in.py)",
    ("GET", "/login/email/{token:str}"): "the emailed link's confirmation page: reads only",
    ("POST", "/login/code"): "the emailed code: signs in, a few tries per link (test_email_sign_in.py)",
    ("GET", "/signed-out"): "a fixed page saying the visitor is signed out",
    ("GET", "/theme.css"): "the company's accent colour, public by design",
    ("GET", "/logo/{sha256:str}"): "the company's logo (re-encoded at upload), public by design like its name",
    ("MOUNT", "/static"): "the stylesheet",
    ("GET", "/favicon.ico"): "the icon browsers ask for, the same for everyone",
    ("POST", "/webhooks/{gateway:str}"): "a payment gateway's events: each signature verified (test_stripe.py)",
}
# A route's {document_id} names a document of the kind its first path segment says.
DOCUMENT_KINDS = {
    "invoices": "invoice",
    "payments": "payment",
    "credit-notes": "credit_note",
    "estimates": "estimate",
    "pay": "payment_attempt",  # /pay/{token}: what became of a payment made online
    "payment-methods": "payment_method",  # a saved card
    "security": "session",  # /security/sessions/{handle}: another session of the customer's
}
KNOWN_PARAMETERS = {"document_id", "token", "method_id", "handle"}


def portal_routes(world: World) -> list[tuple[str, str]]:
    """(method, path) for every route of the portal router, as the app builds it."""
    router = portal_router(Context(world.settings, world.store, world.clock))
    found = []
    for route in router.routes:
        if isinstance(route, Mount):
            found.append(("MOUNT", route.path))
        else:
            assert isinstance(route, Route)
            assert route.methods is not None
            found.extend((method, route.path) for method in sorted(route.methods - {"HEAD"}))
    return found


def protected(world: World, method: str) -> list[str]:
    return [path for m, path in portal_routes(world) if m == method and (m, path) not in PUBLIC_ROUTES]


def kind_of(path: str) -> str:
    return DOCUMENT_KINDS[path.strip("/").split("/")[0]]


def fill(path: str, document_id: int | str) -> str:
    return re.sub(r"\{(document_id|token|method_id|handle)(:\w+)?\}", str(document_id), path)


@dataclass
class Documents:
    """One document of each kind for acme's customer 1234 (mine), 1235 (neighbour), and globex's 1234."""

    mine: dict[str, int | str]
    neighbour: dict[str, int | str]
    other_company: dict[str, int | str]


def _create_all(world: World, company_id: int, customer_id: int, tag: str) -> dict[str, int | str]:
    store, now = world.store, world.clock.now
    lines = [LineInput(f"{tag} widget", "1", 10000)]

    async def go() -> dict[str, int | str]:
        invoice = await factories.invoice(
            store,
            company_id,
            customer_id,
            number=f"{tag}-INV",
            issued_on="2026-11-02",
            due_on="2099-12-01",
            lines=lines,
            now=now,
        )
        payment = await factories.payment(
            store,
            company_id,
            customer_id,
            number=f"{tag}-PAY",
            received_on="2026-11-03",
            amount=5000,
            applications=[(invoice.id, 5000)],
            now=now,
        )
        credit_note = await factories.credit_note(
            store, company_id, customer_id, number=f"{tag}-CN", issued_on="2026-11-04", lines=lines, now=now
        )
        estimate = await factories.estimate(
            store,
            company_id,
            customer_id,
            number=f"{tag}-EST",
            issued_on="2026-11-05",
            expires_on="2099-12-31",
            lines=lines,
            now=now,
        )
        # A saved card, and 10.00 of the invoice paid online with it (the result page names the invoice).
        company = next(c for c in (world.acme, world.globex) if c.id == company_id)
        online = Payments(store)
        settings = await factories.payment_settings(
            store, company, gateway="test", test_mode=True, allow_autopay=True, now=now
        )
        card = await online.add_method(settings, customer_id, CardEntry("4242424242424242", 12, 2099, "123"), now=now)
        await online.add_method(settings, customer_id, CardEntry("5555555555554444", 1, 2098, "123"), now=now)
        plan = PayPlan(1000, "USD", ((invoice.id, 1000),))
        attempt = await online.pay(
            company, settings, customer_id, token=f"{tag}-attempt-token-0123456789", plan=plan, method=card.id, now=now
        )
        endpoint = await factories.webhook_endpoint(
            store, company_id, now=now, url=f"https://{tag.lower()}.hooks.example/in", description=f"{tag} hooks"
        )
        # A contact, on the Contacts page the company allows (services/contacts.py).
        await factories.company_settings(store, company, contacts_page=True)
        person = await factories.contact(
            store, company, customer_id, now=now, name=f"{tag} Contact", email=f"{tag.lower()}@contacts.example"
        )
        # Another browser's session, which the customer's Security page may end.
        id_hash = hashlib.sha256(f"{tag}-other-browser".encode()).digest()
        other = Session(id_hash, company_id, customer_id, "csrf", now, now, now + 3600, "Firefox on Linux")
        await store.write(lambda conn: email_sign_ins.insert_session(conn, other))
        return {
            "session": handle_of(id_hash),
            "webhook_endpoint": endpoint.endpoint.id,
            "contact": person.id,
            "invoice": invoice.id,
            "payment": payment.id,
            "credit_note": credit_note.id,
            "estimate": estimate.id,
            "payment_method": card.id,
            "payment_attempt": attempt.token,
        }

    return run(go())


@pytest.fixture
def documents(world: World) -> Documents:
    return Documents(
        mine=_create_all(world, world.acme.id, 1234, "MINE"),
        neighbour=_create_all(world, world.acme.id, 1235, "NEIGHBOUR"),
        other_company=_create_all(world, world.globex.id, 1234, "OTHERCO"),
    )


def signed_in(world: World, customer_id: int = 1234, company: str = "acme") -> TestClient:
    client = world.client(company)
    key = GLOBEX_KEY if company == "globex" else None
    token = signed(HS256, good_claims(world, sub=customer_id), *([key] if key else []))
    assert client.get(f"/login/{token}").status_code == 303
    return client


def own_url(path: str, documents: Documents) -> str:
    return fill(path, documents.mine[kind_of(path)]) if "{" in path else path
