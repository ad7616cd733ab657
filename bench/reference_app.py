"""The bare reference: what any Python service must pay for a sign-in, and for a portal page.

It does the same essential work as billportal, with the same libraries, and nothing more:

Sign-in (``GET /login/{token}``): Starlette; the least correct HS256 check, with the
standard library (split, HMAC-SHA256 compared in constant time, the payload's JSON,
``exp``, ``sub``); the customer looked up with ``SELECT 1 FROM customers``; then the
same durable rows billportal writes: the single-use mark, the session (the SHA-256 of
its id) and the sign-in event. On SQLite they go through a minimal group commit (every
sign-in of one event-loop turn shares one ``BEGIN IMMEDIATE ... COMMIT`` on one connection
opened with billportal's pragmas; commits at least billportal's ``COMMIT_WINDOW`` apart); on
PostgreSQL (``BILLPORTAL_DATABASE_URL``) through a psycopg pool sized to the concurrency, as one
statement of three CTE inserts, committed. A 303 with the session cookie.

Portal (the pages of ``bench.common.PORTAL_PAGES``): the session read from the database by its
hash, then billportal's own SQL for that page run on the raw ``sqlite3`` connection,
and billportal's own template rendered with billportal's own Jinja environment.
To run exactly billportal's SQL and render exactly what billportal renders, it signs
each heavy customer in once at start-up through billportal's own app (in-process,
over httpx's ASGI transport) and keeps the statements billportal's engine ran for
each page (with their parameters) and the arguments billportal's views gave
``render``. Each request runs those statements and fetches every row, then renders
the kept arguments with its own session's CSRF token: the same HTML, but for that token.
A PDF (``*_pdf`` pages) is made the same way: billportal's SQL, then billportal's own
``web/pdf.py`` function (fpdf2) called with the arguments billportal's view gave it, in a
worker thread as billportal does: the same document, but for its creation date.

``python -m bench.reference_app --port P`` serves it through billportal's own
``billportal.server.serve``: the same uvicorn settings, access log and logging.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bench.common import COMPANY, COOKIE_NAME, HOST_HEADER, page_paths
from bench.generate import HEAVY_CUSTOMERS
from bench.tokens import make_token
from billportal import server as billportal_server
from billportal.app import build_app
from billportal.core.config import Settings
from billportal.portal import views as billportal_views
from billportal.storage import open_store
from billportal.storage.prebuilt import Prebuilt
from billportal.storage.sqlite import COMMIT_WINDOW
from billportal.storage.sqlite import connect as sqlite_connect
from billportal.web.sessions import cookie_header, new_csrf_token
from billportal.web.templates import render

SESSION_SECONDS = 12 * 60 * 60
_PDF_MODULE = billportal_views.pdf  # billportal's own, before the capture stands in for it
POOL_SIZE = 20  # billportal's documented PostgreSQL pool: as many connections as wrk's concurrency and more

_CUSTOMER_EXISTS = "SELECT 1 FROM customers WHERE company_id = ? AND id = ?"
_SESSION = "SELECT company_id, customer_id, csrf_token, expires_at FROM sessions WHERE id_hash = ?"
_MARK_JTI = (
    "INSERT INTO used_jtis (company_id, jti, expires_at) VALUES (?, ?, ?)"
    " ON CONFLICT (company_id, jti) DO UPDATE SET expires_at = excluded.expires_at"
    " WHERE used_jtis.expires_at <= ?"
)
_INSERT_SESSION = (
    "INSERT INTO sessions (id_hash, company_id, customer_id, csrf_token, created_at, last_seen_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO sign_in_events (company_id, at, result, reason, customer_id, issuer, kid, jti, ip, user_agent)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# PostgreSQL: the three inserts in one statement, as billportal sends them.
_PG_CUSTOMER_EXISTS = "SELECT 1 FROM customers WHERE company_id = %s AND id = %s"
_PG_SIGN_IN = """
WITH mark AS (
    INSERT INTO used_jtis (company_id, jti, expires_at) VALUES (%(company_id)s, %(jti)s, %(jti_expires_at)s)
    ON CONFLICT (company_id, jti) DO UPDATE SET expires_at = excluded.expires_at
    WHERE used_jtis.expires_at <= %(at)s
    RETURNING 1
),
new_session AS (
    INSERT INTO sessions (id_hash, company_id, customer_id, csrf_token, created_at, last_seen_at, expires_at)
    SELECT %(id_hash)s, %(company_id)s, %(customer_id)s, %(csrf_token)s, %(at)s, %(at)s, %(expires_at)s
    WHERE EXISTS (SELECT 1 FROM mark)
    RETURNING 1
),
new_event AS (
    INSERT INTO sign_in_events (company_id, at, result, reason, customer_id, issuer, kid, jti, ip, user_agent)
    SELECT %(company_id)s, %(at)s, CASE WHEN EXISTS (SELECT 1 FROM mark) THEN 'success' ELSE 'failure' END,
           CASE WHEN EXISTS (SELECT 1 FROM mark) THEN 'ok' ELSE 'jti_replayed' END,
           %(customer_id)s, %(issuer)s, %(kid)s, %(jti)s, %(ip)s, %(user_agent)s
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM mark)
"""


@dataclass
class Page:
    """What billportal did for one customer's page: its SQL (with parameters) and its render() arguments,
    or for a PDF the ``web/pdf.py`` function it called, with its arguments, and the download's name."""

    statements: list[tuple[str, tuple[Any, ...]]]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    make_pdf: Callable[..., bytes] | None = None
    disposition: str = ""


class _CapturingPdf:
    """Stands for billportal's PDF module in its views: each function called is kept, then called."""

    def __init__(self, calls: list[tuple[Callable[..., bytes], tuple[Any, ...], dict[str, Any]]]) -> None:
        self.calls = calls

    def __getattr__(self, name: str) -> Callable[..., bytes]:
        function: Callable[..., bytes] = getattr(_PDF_MODULE(), name)

        def call(*args: Any, **kwargs: Any) -> bytes:
            self.calls.append((function, args, kwargs))
            return function(*args, **kwargs)

        return call


@dataclass
class State:
    key: bytes = b""
    kid: str = ""
    company_id: int = 0
    pages: dict[tuple[int, str], Page] = field(default_factory=dict)
    capture_error: str = ""
    sqlite: sqlite3.Connection | None = None
    writes: GroupCommit | None = None
    pg_pool: Any = None  # psycopg_pool.AsyncConnectionPool on PostgreSQL


class GroupCommit:
    """The writes asked for in one turn of the event loop share one transaction; each caller awaits its commit.

    Commits are at least billportal's ``COMMIT_WINDOW`` apart, as billportal's are: under load, a few
    turns' writes share one commit.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending: list[tuple[Callable[[sqlite3.Connection], bool], asyncio.Future[bool]]] = []
        self._committed_at = -COMMIT_WINDOW

    def submit(self, write: Callable[[sqlite3.Connection], bool]) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if not self._pending:
            wait = self._committed_at + COMMIT_WINDOW - time.monotonic()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)
        self._pending.append((write, future))
        return future

    def _flush(self) -> None:
        self._committed_at = time.monotonic()
        batch, self._pending = self._pending, []
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [write(conn) for write, _ in batch]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)


STATE = State()


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verify(token: str, key: bytes, now: int) -> dict[str, Any] | None:
    """The least a correct HS256 check does, with the standard library only."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        expected = hmac.new(key, f"{header_b64}.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64decode(signature_b64)):
            return None
        claims = json.loads(_b64decode(payload_b64))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        return None
    return claims


async def _capture_pages(settings: Settings, state: State) -> None:
    """Sign the heavy customers in through billportal once and keep its SQL and what its views rendered."""
    store = open_store(settings, migrate=False)
    rendered: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    statements: list[tuple[str, tuple[Any, ...]]] = []

    def capturing_render(*args: Any, **kwargs: Any) -> Any:
        rendered.append((args, kwargs))
        return render(*args, **kwargs)

    def capture_sql(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if not many and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, tuple(parameters or ())))

    prebuilt_rows = Prebuilt.rows

    def capture_prebuilt(read: Prebuilt, conn: Any, params: Any) -> list[tuple[Any, ...]]:
        # billportal's prebuilt reads run on the driver's cursor, where SQLAlchemy's events do not see them.
        rows = prebuilt_rows(read, conn, params)
        compiled = read._compiled[conn.dialect.name]
        values = {**compiled.defaults, **params}
        statements.append((compiled.sql, tuple(values[name] for name in compiled.positions or ())))
        return rows

    event.listen(Engine, "before_cursor_execute", capture_sql)
    try:
        app = build_app(settings, store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"https://{HOST_HEADER}") as client:
            for customer_id in range(1, HEAVY_CUSTOMERS + 1):
                token = make_token(state.key.decode("utf-8"), customer_id, secrets.token_hex(16))
                answer = await client.get(f"/login/{token}", follow_redirects=False)
                cookie = answer.cookies.get(COOKIE_NAME) or _cookie_value(answer.headers.get("set-cookie", ""))
                if answer.status_code != 303 or not cookie:
                    state.capture_error = f"billportal answered {answer.status_code} to a sign-in"
                    return
                for path in page_paths(settings.data_dir, [customer_id])[customer_id].values():
                    # Twice, keeping the run with fewer statements: the first may also load the company's
                    # settings (cached for a second), which is not a page's own work.
                    runs: list[Page] = []
                    for _ in range(2):
                        rendered.clear()
                        statements.clear()
                        pdf_calls: list[tuple[Callable[..., bytes], tuple[Any, ...], dict[str, Any]]] = []
                        with (
                            mock.patch.object(Prebuilt, "rows", capture_prebuilt),
                            mock.patch.object(billportal_views, "render", capturing_render),
                            mock.patch.object(billportal_views, "pdf", lambda calls=pdf_calls: _CapturingPdf(calls)),
                        ):
                            page = await client.get(path, headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
                        if page.status_code != 200 or len(rendered) + len(pdf_calls) != 1:
                            state.capture_error = f"billportal answered {page.status_code} for {path}"
                            return
                        if pdf_calls:
                            function, args, kwargs = pdf_calls[0]
                            disposition = page.headers.get("content-disposition", "")
                            runs.append(Page(list(statements), args, kwargs, function, disposition))
                        else:
                            args, kwargs = rendered[0]
                            runs.append(Page(list(statements), args, kwargs))
                    state.pages[(customer_id, path)] = min(runs, key=lambda run: len(run.statements))
    finally:
        event.remove(Engine, "before_cursor_execute", capture_sql)
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
        active = next(k for k in company.sso_keys if k.state == "active")
        state.key, state.kid, state.company_id = active.secret, active.kid, company.id
    finally:
        store.close()
    url = settings.effective_database_url
    if url.startswith("postgresql"):
        from psycopg_pool import AsyncConnectionPool

        conninfo = re.sub(r"^postgresql\+psycopg://", "postgresql://", url)
        state.pg_pool = AsyncConnectionPool(conninfo, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False)
        await state.pg_pool.open(wait=True)
        return
    state.sqlite = sqlite_connect(settings.sqlite_path)
    state.writes = GroupCommit(state.sqlite)
    await _capture_pages(settings, state)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    del app
    await _load(STATE)
    try:
        yield
    finally:
        if STATE.pg_pool is not None:
            await STATE.pg_pool.close()
        if STATE.sqlite is not None:
            STATE.sqlite.close()


def _refused() -> Response:
    return PlainTextResponse("Sign-in failed", status_code=401)


async def login(request: Request) -> Response:
    now = int(time.time())
    claims = _verify(request.path_params["token"], STATE.key, now)
    sub, jti = (claims or {}).get("sub"), (claims or {}).get("jti")
    if not isinstance(sub, str) or not sub.isdigit() or not isinstance(jti, str):
        return _refused()
    customer_id = int(sub)
    session_id = secrets.token_urlsafe(32)
    row = {
        "company_id": STATE.company_id,
        "customer_id": customer_id,
        "jti": jti,
        "jti_expires_at": int(claims["exp"]) if claims else now,
        "at": now,
        "id_hash": hashlib.sha256(session_id.encode("ascii")).digest(),
        "csrf_token": new_csrf_token(),
        "expires_at": now + SESSION_SECONDS,
        "issuer": claims.get("iss") if claims else None,
        "kid": STATE.kid,
        "ip": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent", "")[:256],
    }
    if STATE.pg_pool is not None:
        signed_in = await _pg_sign_in(row)
    else:
        signed_in = await _sqlite_sign_in(row)
    if not signed_in:
        return _refused()
    response = RedirectResponse("/", status_code=303)
    cookie = cookie_header(COOKIE_NAME, session_id, secure=True, max_age=SESSION_SECONDS)
    response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
    return response


async def _sqlite_sign_in(row: dict[str, Any]) -> bool:
    conn, writes = STATE.sqlite, STATE.writes
    assert conn is not None
    assert writes is not None
    if conn.execute(_CUSTOMER_EXISTS, (row["company_id"], row["customer_id"])).fetchone() is None:
        return False

    def write(conn: sqlite3.Connection) -> bool:
        marked = conn.execute(_MARK_JTI, (row["company_id"], row["jti"], row["jti_expires_at"], row["at"]))
        if marked.rowcount == 0:
            return False
        conn.execute(
            _INSERT_SESSION,
            (
                row["id_hash"],
                row["company_id"],
                row["customer_id"],
                row["csrf_token"],
                row["at"],
                row["at"],
                row["expires_at"],
            ),
        )
        conn.execute(
            _INSERT_EVENT,
            (
                row["company_id"],
                row["at"],
                "success",
                "ok",
                row["customer_id"],
                row["issuer"],
                row["kid"],
                row["jti"],
                row["ip"],
                row["user_agent"],
            ),
        )
        return True

    return await writes.submit(write)


async def _pg_sign_in(row: dict[str, Any]) -> bool:
    async with STATE.pg_pool.connection() as conn:
        found = await (await conn.execute(_PG_CUSTOMER_EXISTS, (row["company_id"], row["customer_id"]))).fetchone()
        if found is None:
            return False
        ok = await (await conn.execute(_PG_SIGN_IN, row)).fetchone()
        # the pool's connection commits on leaving the block
    return bool(ok and ok[0])


async def portal_page(request: Request) -> Response:
    conn = STATE.sqlite
    if conn is None:
        return PlainTextResponse("Pages are measured on SQLite", status_code=404)
    cookie = request.cookies.get(COOKIE_NAME, "")
    session = conn.execute(_SESSION, (hashlib.sha256(cookie.encode("ascii", "replace")).digest(),)).fetchone()
    if session is None or session[3] <= time.time():
        return PlainTextResponse("Sign in first", status_code=401)
    customer_id, csrf = int(session[1]), str(session[2])
    page = STATE.pages.get((customer_id, request.url.path))
    if page is None:
        return PlainTextResponse(f"Not captured: {STATE.capture_error or 'not a heavy customer'}", status_code=404)
    for statement, parameters in page.statements:
        conn.execute(statement, parameters).fetchall()
    if page.make_pdf is not None:
        content = await run_in_threadpool(page.make_pdf, *page.args, **page.kwargs)
        response = billportal_views.pdf_response(content, "document.pdf")
        response.headers["content-disposition"] = page.disposition
        return response
    kwargs = {**page.kwargs, "csrf_token": csrf} if "csrf_token" in page.kwargs else page.kwargs
    return render(*page.args, **kwargs)


async def signed_out(request: Request) -> Response:
    del request
    return PlainTextResponse("Signed out")


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/login/{token:path}", login, methods=["GET"]),
            Route("/signed-out", signed_out, methods=["GET"]),
            Route("/{path:path}", portal_page, methods=["GET"]),  # the captured pages (bench/common.py PORTAL_PAGES)
        ],
        lifespan=_lifespan,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # billportal's serve() with every setting unchanged, but serving this app instead of billportal's
    # (bench/servers.py checks, at each start, which app answers).
    with mock.patch.object(billportal_server, "create_app", create_app):
        return int(billportal_server.serve(Settings.from_env(), host=args.host, port=args.port))


if __name__ == "__main__":
    raise SystemExit(main())
