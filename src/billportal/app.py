"""The ASGI application: one process serves every company's portal host.

``uvicorn --factory billportal.app:create_app`` (or ``billportal serve``) builds
it from ``BILLPORTAL_*`` settings. Requests are dispatched by Host header:
``{company}.{base}`` to that company's portal, anything else to a 404 page.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import sys
from collections.abc import Callable
from pathlib import Path

from starlette.convertors import register_url_convertor
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from billportal.core import i18n
from billportal.core.clock import system_clock
from billportal.core.config import ConfigError, Settings
from billportal.core.errors import DatabaseDamaged, StorageUnavailable
from billportal.services.mail import MailConfig, MailDeliverer
from billportal.services.webhooks import Deliverer
from billportal.storage import open_store
from billportal.storage.store import Store
from billportal.web.context import SITE_KEY, Context
from billportal.web.convertors import BoundedIntConvertor, HandleConvertor, TokenConvertor
from billportal.web.errors import ErrorGuard, error_page
from billportal.web.hosts import Site, site_for
from billportal.web.operations import OPERATIONS_PATHS, Observability, Operations
from billportal.web.proxies import TrustedProxies
from billportal.web.security import SecurityHeaders
from billportal.web.sessions import PRUNE_INTERVAL
from billportal.web.shedding import LoadShedding

STARTUP_FAILURE = 3  # uvicorn's: the supervisor stops rather than restart the worker
STATIC_DIR = Path(__file__).with_name("static")


async def favicon(_request: Request) -> Response:
    """The icon every browser asks each host for: public, kept a day."""
    return FileResponse(
        STATIC_DIR / "favicon.ico", media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )


# Longest path plus query string served: a sign-in token is at most 4 KiB.
log = logging.getLogger("billportal.sessions")

MAX_TARGET_LENGTH = 8192

# Every route's {name:int}, ours and any added later, is bounded (before routes compile).
register_url_convertor("int", BoundedIntConvertor())
register_url_convertor("token", TokenConvertor())
register_url_convertor("handle", HandleConvertor())


def portal_router(context: Context) -> Router:
    """``{company}.{base}``: a company's customer portal."""
    from billportal.portal.contacts import ContactPages
    from billportal.portal.email_sign_in import EmailSignIn
    from billportal.portal.signin import SignIn
    from billportal.portal.views import Portal

    sign_in = SignIn(context)
    email = EmailSignIn(context, sign_in)
    portal = Portal(context)
    contact_pages = ContactPages(context)
    return Router(
        routes=[
            # Email sign-in's routes come first: /login/{token:token} takes any path below /login.
            Route("/login", email.page, methods=["GET"]),
            Route("/login/email", email.request_link, methods=["POST"]),
            Route("/login/email/confirm", email.press, methods=["POST"]),
            Route("/login/email/{token:str}", email.confirmation, methods=["GET"]),
            Route("/login/code", email.code, methods=["POST"]),
            Route("/login/{token:token}", sign_in.get, methods=["GET"]),
            Route("/login", sign_in.post, methods=["POST"]),
            Route("/", portal.my_account, methods=["GET"]),
            Route("/invoices", portal.invoices, methods=["GET"]),
            Route("/invoices/{document_id:int}", portal.invoice, methods=["GET"]),
            Route("/invoices/{document_id:int}/pdf", portal.invoice_pdf, methods=["GET"]),
            Route("/payments", portal.payments, methods=["GET"]),
            Route("/payments/{document_id:int}", portal.payment, methods=["GET"]),
            Route("/payments/{document_id:int}/pdf", portal.payment_pdf, methods=["GET"]),
            Route("/credit-notes", portal.credit_notes, methods=["GET"]),
            Route("/credit-notes/{document_id:int}", portal.credit_note, methods=["GET"]),
            Route("/credit-notes/{document_id:int}/pdf", portal.credit_note_pdf, methods=["GET"]),
            Route("/estimates", portal.estimates, methods=["GET"]),
            Route("/estimates/{document_id:int}", portal.estimate, methods=["GET"]),
            Route("/estimates/{document_id:int}/pdf", portal.estimate_pdf, methods=["GET"]),
            Route("/estimates/{document_id:int}/approve", portal.confirm_approval, methods=["GET"]),
            Route("/estimates/{document_id:int}/approve", portal.approve_estimate, methods=["POST"]),
            Route("/estimates/{document_id:int}/decline", portal.decline_estimate, methods=["POST"]),
            Route("/statements/balance-forward", portal.balance_forward_statement, methods=["GET"]),
            Route("/statements/balance-forward/pdf", portal.balance_forward_statement_pdf, methods=["GET"]),
            Route("/statements/open-item", portal.open_item_statement, methods=["GET"]),
            Route("/statements/open-item/pdf", portal.open_item_statement_pdf, methods=["GET"]),
            Route("/billing-info", portal.billing_info, methods=["GET"]),
            Route("/billing-info", portal.update_billing_info, methods=["POST"]),
            Route("/locale", portal.choose_locale, methods=["POST"]),
            Route("/pay", portal.pay, methods=["GET"]),
            Route("/pay", portal.pay_submit, methods=["POST"]),
            Route("/pay/{token:str}", portal.pay_attempt, methods=["GET"]),
            Route("/webhooks/{gateway:str}", portal.webhook, methods=["POST"]),
            Route("/payment-methods", portal.payment_methods, methods=["GET"]),
            Route("/payment-methods", portal.add_payment_method, methods=["POST"]),
            Route("/payment-methods/autopay", portal.set_autopay, methods=["POST"]),
            Route("/payment-methods/{method_id:int}/default", portal.default_payment_method, methods=["POST"]),
            Route("/payment-methods/{method_id:int}/remove", portal.remove_payment_method, methods=["POST"]),
            Route("/accounts", contact_pages.accounts, methods=["GET"]),
            Route("/accounts/switch", contact_pages.switch, methods=["POST"]),
            Route("/contacts", contact_pages.contacts, methods=["GET"]),
            Route("/contacts", contact_pages.add_contact, methods=["POST"]),
            Route("/contacts/change", contact_pages.change_contact, methods=["POST"]),
            Route("/security", portal.security, methods=["GET"]),
            Route("/security/sessions/end-others", portal.end_other_sessions, methods=["POST"]),
            Route("/security/sessions/{handle:handle}/end", portal.end_session, methods=["POST"]),
            Route("/logout", portal.sign_out, methods=["POST"]),
            Route("/signed-out", portal.signed_out, methods=["GET"]),
            Route("/theme.css", portal.theme, methods=["GET"]),
            Route("/logo/{sha256:str}", portal.logo, methods=["GET"]),
            Route("/favicon.ico", favicon, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]
    )


def dashboard_router(context: Context) -> Router:
    """``dashboard.{base}``: the company admins' dashboard, and the REST API under /api/v1."""
    from billportal.api import api_mount
    from billportal.dashboard.routes import dashboard_routes

    routes: list[BaseRoute] = [
        *dashboard_routes(context),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        api_mount(context),
    ]
    return Router(routes=routes)


# Each site's router, built (its modules imported) by the first request to that site: a worker whose
# hosts never ask for the dashboard never loads the dashboard, the API or what only they use.
SITES: dict[str, Callable[[Context], ASGIApp]] = {"portal": portal_router, "dashboard": dashboard_router}


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await error_page(404)(scope, receive, send)


class Billportal:
    """Dispatches each request to the site its Host header names."""

    def __init__(self, context: Context, *, freeze_heap: bool = False) -> None:
        self.context = context
        self.freeze_heap = freeze_heap
        self.sites: dict[str, ASGIApp] = {}  # the SITES built so far
        self._site_cache: dict[bytes, Site | None] = {}
        self.operations = Operations(context.store, context.settings.metrics_networks)

    def _site(self, scope: Scope) -> Site | None:
        host = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                break
        cached = self._site_cache.get(host, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        site = site_for(host.decode("latin-1"), self.context.settings.base_domain)
        if len(self._site_cache) > 10_000:
            self._site_cache.clear()
        self._site_cache[host] = site
        return site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if len(scope["path"]) + len(scope["query_string"]) > MAX_TARGET_LENGTH:
            await error_page(414)(scope, receive, send)
            return
        if scope["path"] in OPERATIONS_PATHS:
            await self.operations(scope, receive, send)
            return
        site = self._site(scope)
        build = SITES.get(site.kind) if site is not None else None
        if site is None or build is None:
            await _not_found(scope, receive, send)
            return
        app = self.sites.get(site.kind)
        if app is None:
            app = self.sites[site.kind] = build(self.context)
            if self.freeze_heap:
                gc.freeze()  # the site's routes and templates live as long as the process (see _lifespan)
        scope[SITE_KEY] = site
        if site.kind == "dashboard":  # admins read the dashboard's strings, in English for now (core/i18n.py)
            with i18n.speaking(i18n.DEFAULT_LOCALE, i18n.DASHBOARD_DOMAIN):
                await app(scope, receive, send)
            return
        await app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        tasks: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.operations.startup()
                tasks.append(asyncio.create_task(self._prune_sessions()))
                if self.context.settings.webhooks_deliver:
                    # Embedded or scaled out, each serving process sends webhooks: no extra process to run.
                    deliverer = Deliverer(self.context.store, test_mode=self.context.settings.webhooks_test_mode)
                    tasks.append(asyncio.create_task(deliverer.run_forever(self.context.clock)))
                    mailer = MailDeliverer(self.context.store, MailConfig.from_settings(self.context.settings))
                    tasks.append(asyncio.create_task(mailer.run_forever(self.context.clock)))
                if self.freeze_heap:
                    # What start-up built (modules, tables, compiled statements) lives as long as the
                    # process: frozen out of the collector, a full collection scans only what requests
                    # left behind, instead of pausing every request in flight for tens of milliseconds.
                    gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await self.context.store.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _prune_sessions(self) -> None:
        """Delete the sessions that are over, at startup and every PRUNE_INTERVAL (and `billportal sessions prune`)."""
        context = self.context
        while True:
            try:
                ended = await context.store.prune_sessions(context.clock(), context.timeouts.idle)
            except StorageUnavailable:
                log.warning("database unavailable: sessions that are over were not pruned; will retry")
            else:
                if ended:
                    log.info("pruned %d sessions that were over", ended)
            await asyncio.sleep(PRUNE_INTERVAL)


def build_app(
    settings: Settings, store: Store, clock: Callable[[], int] = system_clock, *, freeze_heap: bool = False
) -> ASGIApp:
    """The app over an open store (tests pass their own clock).

    ``freeze_heap``: the app is its process's only one (a server's worker), so what its start-up
    builds may be frozen out of the garbage collector (not for tests, which build one app after another).
    """
    app = SecurityHeaders(ErrorGuard(Billportal(Context(settings, store, clock), freeze_heap=freeze_heap)))
    observed = Observability(TrustedProxies(app, settings.trusted_proxies))
    return LoadShedding(observed, settings.max_in_flight, settings.shed_latency_ms)  # outermost: refusing is cheap


def create_app() -> ASGIApp:
    """The factory uvicorn calls: settings from the environment, database migrated.

    In a worker of ``serve --workers N``, a failure to start is one logged line and
    uvicorn's start-up failure status, so that the supervisor stops instead of
    starting the worker again and again (a single process raises it to the CLI).
    """
    try:
        settings = Settings.from_env()
        return build_app(settings, open_store(settings), freeze_heap=True)
    except (ConfigError, DatabaseDamaged, StorageUnavailable) as exc:
        if multiprocessing.parent_process() is None:
            raise
        logging.getLogger("billportal.server").error("this worker cannot start: %s", exc)  # noqa: TRY400 - one line
        sys.exit(STARTUP_FAILURE)
