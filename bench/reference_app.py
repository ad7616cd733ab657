"""The bare reference: what any Python service must pay for a sign-in, and for a portal page.

Sign-in (``GET /login/{token}``): Starlette, PyJWT's ``jwt.decode(token, key,
algorithms=["HS256"])``, the customer looked up in a dict, a random session id
put in a dict, and a 303 with the session cookie. No policy beyond PyJWT's own
checks, no database, no sign-in event, no single-use mark, no security headers.

Portal (``GET /`` and ``GET /invoices``): the session looked up in that dict and
billportal's own template rendered with billportal's own Jinja environment and
``render``, from the dataclass records held in memory: no query per request.

At start-up (the lifespan) it reads the bench company's SSO key and customer ids
once from the same database billportal serves. To render exactly what billportal
renders, it then signs each heavy customer in once through billportal's own app
(in-process, over httpx's ASGI transport) and keeps the arguments billportal's
views passed to ``render`` (template, headers and the records): each request
re-renders those with its own session's CSRF token. So the two apps always show
the same rows, even as the portal's pages change.

``python -m bench.reference_app --port P`` serves it through billportal's own
``billportal.server.serve``: the same uvicorn settings, access log and logging.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx
import jwt
import uvicorn
from sqlalchemy import Connection, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bench.common import COMPANY, COOKIE_NAME, HOST_HEADER
from bench.generate import HEAVY_CUSTOMERS
from bench.tokens import make_token
from billportal import server as billportal_server
from billportal.app import build_app
from billportal.core.config import Settings
from billportal.portal import views as billportal_views
from billportal.storage import open_store, schema
from billportal.web.sessions import cookie_header, new_csrf_token
from billportal.web.templates import render

SESSION_SECONDS = 12 * 60 * 60
PORTAL_PATHS = ("/", "/invoices")


@dataclass
class State:
    key: str = ""
    customers: set[int] = field(default_factory=set)
    # (customer id, path) -> the positional and keyword arguments billportal's view gave render()
    pages: dict[tuple[int, str], tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)
    sessions: dict[str, tuple[int, str]] = field(default_factory=dict)  # session id -> (customer, csrf)
    capture_error: str = ""


STATE = State()


async def _capture_pages(settings: Settings, state: State) -> None:
    """Sign the heavy customers in through billportal once and keep what its views rendered."""
    store = open_store(settings, migrate=False)
    captured: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def capturing_render(*args: Any, **kwargs: Any) -> Any:
        captured.append((args, kwargs))
        return render(*args, **kwargs)

    try:
        app = build_app(settings, store)
        transport = httpx.ASGITransport(app=app)
        customers = sorted(c for c in state.customers if c <= HEAVY_CUSTOMERS)
        async with httpx.AsyncClient(transport=transport, base_url=f"https://{HOST_HEADER}") as client:
            for customer_id in customers:
                token = make_token(state.key, customer_id, secrets.token_hex(16))
                answer = await client.get(f"/login/{token}", follow_redirects=False)
                cookie = answer.cookies.get(COOKIE_NAME) or _cookie_value(answer.headers.get("set-cookie", ""))
                if answer.status_code != 303 or not cookie:
                    state.capture_error = f"billportal answered {answer.status_code} to a sign-in"
                    return
                for path in PORTAL_PATHS:
                    captured.clear()
                    with mock.patch.object(billportal_views, "render", capturing_render):
                        page = await client.get(path, headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
                    if page.status_code != 200 or len(captured) != 1:
                        state.capture_error = f"billportal answered {page.status_code} for {path}"
                        return
                    state.pages[(customer_id, path)] = captured[0]
    finally:
        store.close()


def _cookie_value(set_cookie: str) -> str:
    prefix = f"{COOKIE_NAME}="
    return set_cookie.split(";", 1)[0].removeprefix(prefix) if set_cookie.startswith(prefix) else ""


async def _load(state: State) -> None:
    settings = Settings.from_env()
    store = open_store(settings, migrate=False)
    try:
        company = await store.company(COMPANY)
        if company is None:
            raise RuntimeError(f"no company {COMPANY!r} in the bench database")
        state.key = next(k.secret.decode("utf-8") for k in company.sso_keys if k.state == "active")
        ids = schema.customers.c

        def customer_ids(conn: Connection) -> set[int]:
            return {int(row[0]) for row in conn.execute(select(ids.id).where(ids.company_id == company.id))}

        state.customers = await store.backend.read(customer_ids)
    finally:
        store.close()
    await _capture_pages(settings, state)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    del app
    await _load(STATE)
    yield


async def login(request: Request) -> Response:
    try:
        claims = jwt.decode(request.path_params["token"], STATE.key, algorithms=["HS256"])
        customer_id = int(claims["sub"])
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError):
        return PlainTextResponse("Sign-in failed", status_code=401)
    if customer_id not in STATE.customers:
        return PlainTextResponse("Sign-in failed", status_code=401)
    session_id = secrets.token_urlsafe(32)
    STATE.sessions[session_id] = (customer_id, new_csrf_token())
    response = RedirectResponse("/", status_code=303)
    cookie = cookie_header(COOKIE_NAME, session_id, secure=True, max_age=SESSION_SECONDS)
    response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
    return response


async def portal_page(request: Request) -> Response:
    session = STATE.sessions.get(request.cookies.get(COOKIE_NAME, ""))
    if session is None:
        return PlainTextResponse("Sign in first", status_code=401)
    customer_id, csrf = session
    page = STATE.pages.get((customer_id, request.url.path))
    if page is None:
        return PlainTextResponse(f"Not captured: {STATE.capture_error or 'not a heavy customer'}", status_code=404)
    args, kwargs = page
    if "csrf_token" in kwargs:
        kwargs = {**kwargs, "csrf_token": csrf}
    return render(*args, **kwargs)


async def signed_out(request: Request) -> Response:
    del request
    return PlainTextResponse("Signed out")


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/login/{token:path}", login, methods=["GET"]),
            *(Route(path, portal_page, methods=["GET"]) for path in PORTAL_PATHS),
            Route("/signed-out", signed_out, methods=["GET"]),
        ],
        lifespan=_lifespan,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    real_run = uvicorn.run

    def run_reference(app: object, **kwargs: Any) -> None:
        del app  # billportal's app: serve ours with every other setting unchanged
        real_run("bench.reference_app:create_app", **kwargs)

    with mock.patch.object(uvicorn, "run", run_reference):
        return int(billportal_server.serve(Settings.from_env(), host=args.host, port=args.port))


if __name__ == "__main__":
    raise SystemExit(main())
